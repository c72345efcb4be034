"""ColaRec as a registered family: its recipe fields and how a recipe builds it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict

from ...data import RecDataset
from ...recipes.genrec_recipe import check_non_negative
from ...semantic_ids.id_table import SemanticIdTable
from ..genrec_tokenizer.tokenization_genrec import GenRecTokenizer
from ..registry import FamilyComponents, ModelFamily, register_family
from ..t5_recipe import T5ShapeRecipe
from .configuration_colarec import ColaRecConfig
from .modeling_colarec import ColaRecForGenerativeRecommendation
from .processing_colarec import COLAREC_TOKENS, ColaRecCollator, ColaRecFeatureConfig, ColaRecFeatures, ColaRecProcessor


@dataclass
class ColaRecRecipe(T5ShapeRecipe):
    """ColaRec's own recipe fields: collaborative GIDs, item-content inputs, loss weights."""

    lightgcn_epochs: int = field(default=20, metadata={"help": "LightGCN epochs (BPR on training interactions)"})
    lightgcn_dim: int = 64
    gid_levels: int = 3
    gid_clusters: int = field(default=32, metadata={"help": "clusters a level of the constrained k-means GIDs"})
    text_vocab_size: int = field(default=8000, metadata={"help": "Unigram text vocabulary trained on item texts"})
    max_items_per_user: int = 20
    max_tokens_per_item: int = 30
    max_input_length: int = 256
    users_per_item: int = field(default=1, metadata={"help": "user slots in an item's indexing input"})
    use_item_position_embeddings: bool = False
    rec_loss_weight: float = 1.0
    index_loss_weight: float = 1.0
    bpr_loss_weight: float = 1.0
    contrastive_loss_weight: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_non_negative(self, ("lightgcn_epochs", "lightgcn_dim", "gid_levels", "gid_clusters", "text_vocab_size",
                                  "max_items_per_user", "max_tokens_per_item", "max_input_length"), minimum=1)
        check_non_negative(self, ("users_per_item", "rec_loss_weight", "index_loss_weight", "bpr_loss_weight",
                                  "contrastive_loss_weight"))

    def feature_config(self, seed: int = 0) -> ColaRecFeatureConfig:
        return ColaRecFeatureConfig(
            max_items_per_user=self.max_items_per_user,
            max_tokens_per_item=self.max_tokens_per_item,
            max_length=self.max_input_length,
            users_per_item=self.users_per_item,
            seed=seed,
        )

    def semantic_id_overrides(self) -> dict[str, Any]:
        """The item-tokenizer recipe fields of ColaRec's GIDs (``colarec-kmeans``)."""
        return {"num_levels": self.gid_levels, "codebook_size": self.gid_clusters,
                "lightgcn_epochs": self.lightgcn_epochs, "lightgcn_dim": self.lightgcn_dim}


def build_colarec(recipe: Any, family_recipe: ColaRecRecipe, dataset: RecDataset, splits: DatasetDict,
                  table: SemanticIdTable, seed: int) -> FamilyComponents:
    tokenizer = GenRecTokenizer.from_semantic_id_table(
        table, num_user_buckets=0, text_corpus=dataset.catalogue.texts(), text_vocab_size=family_recipe.text_vocab_size,
        task_tokens=COLAREC_TOKENS,
    )
    processor = ColaRecProcessor.from_catalogue(
        tokenizer, [dataset.catalogue.text(item) for item in table.item_ids], family_recipe.feature_config(seed)
    )
    features = ColaRecFeatures(processor, dataset.train_interactions())
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
        pad_token_id=tokenizer.pad_token_id,
    )
    # ColaRec's decoder writes codes in a vocabulary of its own: decode_items / the generate() constraints read that
    tokenizer.set_generation_layout(config.generation_level_offsets, config.eos_token_id)
    needs_items = family_recipe.bpr_loss_weight > 0 or family_recipe.index_loss_weight > 0 or family_recipe.contrastive_loss_weight > 0
    collator = ColaRecCollator(
        features, with_pos_neg=needs_items, with_sibling=family_recipe.contrastive_loss_weight > 0, seed=seed
    )
    return FamilyComponents(
        model=ColaRecForGenerativeRecommendation(config),
        processor=processor,
        train_dataset=features.train_dataset(splits["train"]),
        train_collator=collator,
        tokenizer=tokenizer,
    )


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

__all__ = ["COLAREC", "ColaRecRecipe", "build_colarec"]
