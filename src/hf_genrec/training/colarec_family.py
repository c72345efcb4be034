"""ColaRec assembly: LightGCN -> constrained k-means GIDs, the item-content tokenizer, features and collators."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from ..data import RecDataset
from ..data.colarec_features import (
    ColaRecCollator,
    ColaRecFeatureConfig,
    ColaRecFeatures,
    ColaRecSpecialTokens,
    tokenize_item_texts,
)
from ..io_utils import atomic_write_json
from ..semantic_ids import SemanticIdTable
from .recipe import GenRecRecipe

logger = logging.getLogger(__name__)

COLAREC_TOKENS = ("<task>", "<item>", "<user>")  # task prompt and the item / user slot placeholders
LIGHTGCN_FILE = "lightgcn.safetensors"
LIGHTGCN_RESULTS_FILE = "lightgcn_results.json"


def build_colarec_gids(recipe: GenRecRecipe, dataset: RecDataset, output_dir: Path, seed: int = 0) -> SemanticIdTable:
    """Train LightGCN on training interactions only, report its own ranking, and cluster items into GIDs."""
    from ..models.colarec.constrained_kmeans import colarec_semantic_ids
    from ..models.colarec.lightgcn import evaluate_ranking, index_interactions, train_lightgcn

    item_ids = dataset.catalogue.item_ids
    train_pairs, user_ids, _ = index_interactions(dataset.train_interactions(), item_ids=item_ids)
    known_users = set(user_ids)
    held_out = {}
    for split in ("validation", "test"):
        rows = dataset.splits(recipe.max_history)[split]
        pairs = [(u, i) for u, targets in zip(rows["user_id"], rows["targets"]) if u in known_users for i in targets]
        held_out[split], _, _ = index_interactions(pairs, item_ids=item_ids, user_ids=user_ids)
    result = train_lightgcn(
        train_pairs, len(user_ids), len(item_ids), dim=recipe.lightgcn_dim, epochs=recipe.lightgcn_epochs,
        seed=seed, eval_interactions=held_out["validation"],
    )
    ks = (5, 10, 20)
    report = {
        "model": "lightgcn (dot product)",
        "best_epoch": result.best_epoch,
        "history": result.history,
        **{f"{split}_{k}": v for split, pairs in held_out.items()
           for k, v in evaluate_ranking(result.user_embeddings, result.item_embeddings, train_pairs, pairs, ks).items()},
        "protocol": dataset.describe_protocol(recipe.max_history),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save(output_dir / LIGHTGCN_FILE)
    atomic_write_json(output_dir / LIGHTGCN_RESULTS_FILE, report, indent=2)
    logger.info("LightGCN: %s", {k: v for k, v in report.items() if k.startswith(("validation", "test"))})
    table = colarec_semantic_ids(item_ids, result.item_embeddings, levels=recipe.gid_levels, clusters=recipe.gid_clusters, seed=seed)
    table.save(output_dir)
    return table


def feature_config(recipe: GenRecRecipe | dict) -> ColaRecFeatureConfig:
    get = recipe.get if isinstance(recipe, dict) else lambda key, default=None: getattr(recipe, key, default)
    defaults = GenRecRecipe()
    return ColaRecFeatureConfig(
        max_items_per_user=int(get("max_items_per_user", defaults.max_items_per_user)),
        max_tokens_per_item=int(get("max_tokens_per_item", defaults.max_tokens_per_item)),
        max_length=int(get("max_input_length", defaults.max_input_length)),
        users_per_item=int(get("users_per_item", defaults.users_per_item)),
    )


def colarec_features(tokenizer: Any, dataset: RecDataset, recipe: GenRecRecipe | dict) -> ColaRecFeatures:
    """Item content (text tokens in semantic-ID table order) and who-saw-what, from training data only."""
    table = tokenizer.semantic_id_table
    config = feature_config(recipe)
    texts = [dataset.catalogue.text(item) for item in table.item_ids]
    item_tokens = tokenize_item_texts(tokenizer, texts, config.max_tokens_per_item)
    special = ColaRecSpecialTokens.from_tokenizer(tokenizer, *COLAREC_TOKENS)
    return ColaRecFeatures(table, item_tokens, dataset.train_interactions(), special, config)


def build_colarec_family(recipe: GenRecRecipe, dataset: RecDataset, splits: DatasetDict, table: SemanticIdTable):
    from ..generation import build_id_tables
    from ..models.colarec import ColaRecConfig, ColaRecForGenerativeRecommendation
    from ..models.genrec_tokenizer import GenRecTokenizer
    from .families import ModelFamily

    tokenizer = GenRecTokenizer.from_semantic_id_table(
        table, num_user_buckets=0, text_corpus=dataset.catalogue.texts(), text_vocab_size=recipe.text_vocab_size,
        task_tokens=COLAREC_TOKENS,
    )
    features = colarec_features(tokenizer, dataset, recipe)
    config = ColaRecConfig(
        vocab_size=len(tokenizer),
        num_items=table.num_items,
        num_users=features.num_users,
        codebook_sizes=table.codebook_sizes,
        **recipe.t5_shape(),
        use_item_position_embeddings=recipe.use_item_position_embeddings,
        rec_loss_weight=recipe.rec_loss_weight,
        index_loss_weight=recipe.index_loss_weight,
        bpr_loss_weight=recipe.bpr_loss_weight,
        contrastive_loss_weight=recipe.contrastive_loss_weight,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = ColaRecForGenerativeRecommendation(config)
    needs_items = recipe.bpr_loss_weight > 0 or recipe.index_loss_weight > 0 or recipe.contrastive_loss_weight > 0
    train_collator = ColaRecCollator(
        features, with_pos_neg=needs_items, with_sibling=recipe.contrastive_loss_weight > 0, seed=0
    )
    return ModelFamily(
        tokenizer=tokenizer,
        model=model,
        train_dataset=features.train_dataset(splits["train"]),
        train_collator=train_collator,
        eval_collator=ColaRecCollator(features).collate_eval,
        id_tables=build_id_tables(table),
    )


def colarec_eval_collator(model: Any, tokenizer: Any, dataset: RecDataset, recipe: dict):
    return ColaRecCollator(colarec_features(tokenizer, dataset, recipe)).collate_eval
