"""ColaRec as a registered family: its recipe fields and how a recipe builds it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from datasets import DatasetDict

from ...data import RecDataset
from ...errors import ConfigError
from ...item_tokenizers.colarec_gids import LIGHTGCN_FILE
from ...item_tokenizers.constrained_kmeans import fewest_levels
from ...item_tokenizers.lightgcn import LightGCNResult
from ...recipes.genrec_recipe import check_non_negative
from ...semantic_ids.id_table import SemanticIdTable
from ...semantic_ids.id_trie import build_id_trie
from ..genrec_tokenizer.tokenization_genrec import GenRecTokenizer
from ..registry import FamilyComponents, ModelFamily, register_family
from ..t5_recipe import T5ShapeRecipe
from .collaborative_holdout import cross_fitted_tables, held_out_lightgcn, held_out_rows, held_out_training_items
from .collaborative_init import init_from_collaborative_vectors
from .configuration_colarec import CODE_EMBEDDING_SCOPES, NODE_SCORINGS, ColaRecConfig
from .modeling_colarec import ColaRecForGenerativeRecommendation
from .processing_colarec import COLAREC_TOKENS, ColaRecCollator, ColaRecFeatureConfig, ColaRecFeatures, ColaRecProcessor


REC_TARGETS = ("all", "held_out")


@dataclass
class ColaRecRecipe(T5ShapeRecipe):
    """ColaRec's own recipe fields: collaborative GIDs, item-content inputs, loss weights."""

    lightgcn_epochs: int = field(default=20, metadata={"help": "LightGCN epochs (BPR on training interactions)"})
    lightgcn_dim: int = 64
    gid_levels: int | None = field(
        default=None,
        metadata={"help": "GID levels; None: the fewest whose gid_clusters ** levels IDs hold the catalogue (3 for ColaRec's datasets)"},
    )
    gid_clusters: int = field(default=32, metadata={"help": "clusters a level of the constrained k-means GIDs"})
    text_vocab_size: int = field(default=8000, metadata={"help": "Unigram text vocabulary trained on item texts"})
    max_items_per_user: int = 20
    max_tokens_per_item: int = 30
    max_input_length: int = 256
    users_per_item: int = field(default=1, metadata={"help": "user slots in an item's indexing input"})
    user_slot: bool = field(
        default=False, metadata={"help": "the recommendation input starts with the user's own learned embedding (training users)"}
    )
    use_item_position_embeddings: bool = False
    rec_loss_weight: float = 1.0
    index_loss_weight: float = 1.0
    bpr_loss_weight: float = 1.0
    contrastive_loss_weight: float = 0.1
    code_embedding_scope: str = field(
        default="level",
        metadata={"help": "level: one code table a level (the paper); node: one row per GID-tree node, the last level's rows the items"},
    )
    node_scoring: str = field(
        default="embedding",
        metadata={"help": "embedding: a GID-tree node scored by its own row; item_logsumexp: by the log-sum-exp of its "
                          "items' scores (the level softmaxes factorise one item softmax; needs code_embedding_scope node)"},
    )
    init_from_lightgcn: bool = field(
        default=False,
        metadata={"help": "start atom-item, user and node-scoped code embeddings from the LightGCN vectors the GIDs were built from"},
    )
    rec_targets: str = field(
        default="all",
        metadata={"help": "all: every training item is a recommendation target; held_out: held_out_per_user training items "
                          "per user are kept out of the LightGCN the model starts from and only those are targets "
                          "(needs init_from_lightgcn)"},
    )
    held_out_per_user: int = field(
        default=1,
        metadata={"help": "rec_targets held_out: at most this many held-out items per user"},
    )
    held_out_max_share: float = field(
        default=0.5,
        metadata={"help": "rec_targets held_out: never hold out more than this share of a user's distinct training "
                          "items (0.25: none of 3, one of 4-7); short histories keep the start's graph whole"},
    )
    cross_fit_folds: int = field(
        default=0,
        metadata={"help": "rec_targets held_out with frozen item rows: 0 trains and ranks with the held-out start's rows; "
                          "k >= 2 ranks with the LightGCN of every training edge (the GIDs') and trains each of k folds "
                          "of the held-out users against that LightGCN withholding the fold's held-out edges"},
    )
    freeze_item_embeddings: bool = field(
        default=False,
        metadata={"help": "keep the atom-item rows (and, with node-scoped codes, the item rows) at their LightGCN start "
                          "(needs init_from_lightgcn)"},
    )
    freeze_user_embeddings: bool = field(
        default=False,
        metadata={"help": "keep the user rows at their LightGCN start (needs init_from_lightgcn): trained, a user slot "
                          "learns the user's recommendation target by heart"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.code_embedding_scope not in CODE_EMBEDDING_SCOPES:
            raise ConfigError(f"code_embedding_scope must be one of {CODE_EMBEDDING_SCOPES}, got {self.code_embedding_scope!r}")
        if self.node_scoring not in NODE_SCORINGS:
            raise ConfigError(f"node_scoring must be one of {NODE_SCORINGS}, got {self.node_scoring!r}")
        if self.node_scoring != "embedding" and self.code_embedding_scope != "node":
            raise ConfigError(f"node_scoring {self.node_scoring!r} needs code_embedding_scope 'node'")
        if self.rec_targets not in REC_TARGETS:
            raise ConfigError(f"rec_targets must be one of {REC_TARGETS}, got {self.rec_targets!r}")
        for name, active in (("rec_targets: held_out", self.rec_targets == "held_out"),
                             ("freeze_item_embeddings", self.freeze_item_embeddings),
                             ("freeze_user_embeddings", self.freeze_user_embeddings)):
            if active and not self.init_from_lightgcn:
                raise ConfigError(f"{name} needs init_from_lightgcn: true (it concerns the LightGCN start)")
        check_non_negative(self, ("lightgcn_epochs", "lightgcn_dim", "gid_levels", "gid_clusters", "text_vocab_size",
                                  "max_items_per_user", "max_tokens_per_item", "max_input_length", "held_out_per_user"),
                           minimum=1)
        check_non_negative(self, ("users_per_item", "rec_loss_weight", "index_loss_weight", "bpr_loss_weight",
                                  "contrastive_loss_weight"))
        if not 0 < self.held_out_max_share < 1:
            raise ConfigError(f"held_out_max_share must be in (0, 1), got {self.held_out_max_share}")
        defaults = {f.name: f.default for f in fields(self)}
        for name in ("held_out_per_user", "held_out_max_share"):
            if getattr(self, name) != defaults[name] and self.rec_targets != "held_out":
                raise ConfigError(f"{name} {getattr(self, name)} needs rec_targets: held_out")
        check_non_negative(self, ("cross_fit_folds",))
        if self.cross_fit_folds == 1:
            raise ConfigError("cross_fit_folds must be 0 (off) or at least 2, got 1")
        if self.cross_fit_folds and (self.rec_targets != "held_out" or not self.freeze_item_embeddings):
            raise ConfigError("cross_fit_folds needs rec_targets: held_out and freeze_item_embeddings: true")

    def feature_config(self, seed: int = 0) -> ColaRecFeatureConfig:
        return ColaRecFeatureConfig(
            max_items_per_user=self.max_items_per_user,
            max_tokens_per_item=self.max_tokens_per_item,
            max_length=self.max_input_length,
            users_per_item=self.users_per_item,
            user_slot=self.user_slot,
            seed=seed,
        )

    def semantic_id_overrides(self, num_items: int) -> dict[str, Any]:
        """The item-tokenizer recipe fields of ColaRec's GIDs (``colarec-kmeans``) for ``num_items`` items."""
        levels = self.gid_levels if self.gid_levels is not None else fewest_levels(num_items, self.gid_clusters)
        return {"num_levels": levels, "codebook_size": self.gid_clusters,
                "lightgcn_epochs": self.lightgcn_epochs, "lightgcn_dim": self.lightgcn_dim}


def build_colarec(recipe: Any, family_recipe: ColaRecRecipe, dataset: RecDataset, splits: DatasetDict,
                  table: SemanticIdTable, seed: int) -> FamilyComponents:
    tokenizer = GenRecTokenizer.from_semantic_id_table(
        table, num_user_buckets=0, text_corpus=dataset.catalogue.texts(), text_vocab_size=family_recipe.text_vocab_size,
        task_tokens=COLAREC_TOKENS,
    )
    training_users = sorted({int(u) for u, _ in dataset.train_interactions()}) if family_recipe.user_slot else None
    processor = ColaRecProcessor.from_catalogue(
        tokenizer, [dataset.catalogue.text(item) for item in table.item_ids], family_recipe.feature_config(seed),
        user_ids=training_users,
    )
    features = ColaRecFeatures(processor, dataset.train_interactions())
    tree, tree_sizes = gid_tree(table) if family_recipe.code_embedding_scope == "node" else (None, None)
    config = ColaRecConfig(
        vocab_size=len(tokenizer),
        num_items=table.num_items,
        num_users=features.num_users,
        codebook_sizes=table.codebook_sizes,
        **family_recipe.t5_shape(),
        use_item_position_embeddings=family_recipe.use_item_position_embeddings,
        rec_loss_weight=family_recipe.rec_loss_weight,
        index_loss_weight=family_recipe.index_loss_weight,
        bpr_loss_weight=family_recipe.bpr_loss_weight,
        contrastive_loss_weight=family_recipe.contrastive_loss_weight,
        code_embedding_scope=family_recipe.code_embedding_scope,
        node_scoring=family_recipe.node_scoring,
        gid_tree_sizes=tree_sizes,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = ColaRecForGenerativeRecommendation(config)
    # ColaRec's decoder writes codes in a vocabulary of its own: decode_items / the generate() constraints read that
    tokenizer.set_generation_layout(config.generation_level_offsets, config.eos_token_id)
    if tree is not None:
        model.set_gid_tree(tree)
    held_out = (held_out_training_items(dataset.train_sequences(), seed, family_recipe.held_out_per_user,
                                        family_recipe.held_out_max_share)
                if family_recipe.rec_targets == "held_out" else None)
    cross_fit = None
    if family_recipe.init_from_lightgcn:
        if held_out is None or family_recipe.cross_fit_folds:  # the GIDs' LightGCN: every training edge
            vectors = load_lightgcn_vectors(table)
        else:
            vectors = held_out_lightgcn(dataset, held_out, list(table.item_ids), dim=family_recipe.lightgcn_dim,
                                        epochs=family_recipe.lightgcn_epochs, seed=seed)
        if family_recipe.cross_fit_folds:
            cross_fit = cross_fitted_tables(
                dataset, held_out, vectors, list(table.item_ids), folds=family_recipe.cross_fit_folds,
                dim=family_recipe.lightgcn_dim, epochs=family_recipe.lightgcn_epochs, seed=seed,
            )
        to_model = init_from_collaborative_vectors(
            model, vectors.item_embeddings, vectors.user_embeddings, item_codes=torch.as_tensor(table.codes), seed=seed
        )
        if family_recipe.freeze_item_embeddings:
            model.freeze_item_embeddings()
        if family_recipe.freeze_user_embeddings:
            model.freeze_user_embeddings()
        if cross_fit is not None:
            model.set_item_tables(cross_fit.item_tables @ to_model)
    needs_items = family_recipe.bpr_loss_weight > 0 or family_recipe.index_loss_weight > 0 or family_recipe.contrastive_loss_weight > 0
    collator = ColaRecCollator(
        features, with_pos_neg=needs_items, with_sibling=family_recipe.contrastive_loss_weight > 0, seed=seed
    )
    train_rows = features.train_dataset(splits["train"])
    if held_out is not None:
        train_rows = held_out_rows(train_rows, held_out)
    if cross_fit is not None:  # each row trains against the table that never saw its target's edge
        train_rows = train_rows.add_column("item_table", [cross_fit.fold_of_user[int(u)] for u in train_rows["user_id"]])
    return FamilyComponents(
        model=model,
        processor=processor,
        train_dataset=train_rows,
        train_collator=collator,
        tokenizer=tokenizer,
    )


def gid_tree(table: SemanticIdTable) -> tuple[tuple[torch.Tensor, ...], list[int]]:
    """``table``'s GID tree for node-scoped codes: one [parents, K] children table a level (``set_gid_tree``)
    and the node count of each level (``gid_tree_sizes``; the last level's nodes are the items)."""
    trie = build_id_trie(table)
    tree = tuple(trie.dense_level(level) for level in range(trie.num_levels))
    return tree, [t.shape[0] for t in tree[1:]] + [table.num_items]


def load_lightgcn_vectors(table: SemanticIdTable) -> LightGCNResult:
    """The LightGCN vectors saved beside ``table`` by the ``colarec-kmeans`` item tokenizer."""
    path = table.source_dir / LIGHTGCN_FILE if table.source_dir is not None else None
    if path is None or not path.is_file():
        raise ConfigError(
            f"init_from_lightgcn needs {LIGHTGCN_FILE} beside the semantic-ID table "
            f"({table.source_dir or 'a table never saved'}): build the IDs with semantic_id_method colarec-kmeans"
        )
    return LightGCNResult.load(path)


def load_legacy_colarec_processor(model_dir: str | os.PathLike, recipe: dict, dataset: RecDataset | None) -> ColaRecProcessor | None:
    """A checkpoint saved before processors were: item texts come from its dataset, limits from its recipe."""
    if dataset is None:
        return None
    tokenizer = GenRecTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    defaults = ColaRecRecipe()
    fields = {name: int(recipe.get(name, getattr(defaults, name)))
              for name in ("max_items_per_user", "max_tokens_per_item", "max_input_length", "users_per_item")}
    family_recipe = ColaRecRecipe(**fields)
    texts = [dataset.catalogue.text(item) for item in tokenizer.semantic_id_table.item_ids]
    return ColaRecProcessor.from_catalogue(tokenizer, texts, family_recipe.feature_config())


COLAREC = register_family(
    ModelFamily(
        name="colarec",
        config_class=ColaRecConfig,
        model_class=ColaRecForGenerativeRecommendation,
        processor_class=ColaRecProcessor,
        recipe_class=ColaRecRecipe,
        build=build_colarec,
        card_template="colarec.md",
        card_tags=("colarec", "collaborative-filtering"),
        task_name="Top-K Recommendation",
        tokenizer_class=GenRecTokenizer,
        semantic_id_method="colarec-kmeans",
        load_processor=load_legacy_colarec_processor,
    )
)

__all__ = ["COLAREC", "ColaRecRecipe", "build_colarec", "gid_tree", "load_lightgcn_vectors"]
