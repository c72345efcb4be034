"""Per-model-family assembly: tokenizer, model, training set and collators from a recipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from datasets import Dataset, DatasetDict

from ..data import RecDataset
from ..generation import SemanticIdTables, build_id_tables
from ..semantic_ids import SemanticIdTable
from .recipe import GenRecRecipe


@dataclass
class ModelFamily:
    tokenizer: Any
    model: Any
    train_dataset: Dataset
    train_collator: Callable
    eval_collator: Callable
    id_tables: SemanticIdTables


def with_length_column(dataset: Dataset) -> Dataset:
    """Add `length` (history size) so `train_sampling_strategy: group_by_length` needs no tokenisation pass."""
    return dataset.map(lambda row: {"length": len(row["history"])}, desc="lengths")


def build_family(recipe: GenRecRecipe, dataset: RecDataset, splits: DatasetDict, table: SemanticIdTable) -> ModelFamily:
    if recipe.model_family == "tiger":
        return _build_tiger(recipe, splits, table)
    from .colarec_family import build_colarec_family

    return build_colarec_family(recipe, dataset, splits, table)


def _build_tiger(recipe: GenRecRecipe, splits: DatasetDict, table: SemanticIdTable) -> ModelFamily:
    from ..models.genrec_tokenizer import GenRecTokenizer
    from ..models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation

    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=recipe.num_user_buckets)
    if recipe.init_from_t5:
        model = TigerForGenerativeRecommendation.from_t5_pretrained(recipe.init_from_t5, tokenizer)
    else:
        model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **recipe.t5_shape()))
    return ModelFamily(
        tokenizer=tokenizer,
        model=model,
        train_dataset=with_length_column(splits["train"]),
        train_collator=TigerDataCollator(tokenizer, max_history=recipe.max_history),
        eval_collator=TigerDataCollator(tokenizer, max_history=recipe.max_history, keep_eval_fields=True),
        id_tables=build_id_tables(table),
    )


def eval_collator_for(model: Any, tokenizer: Any, dataset: RecDataset, recipe: dict) -> Callable:
    """The evaluation collator of a loaded model (chosen by its config's model_type) and its saved recipe."""
    if model.config.model_type == "tiger":
        from ..models.tiger import TigerDataCollator

        return TigerDataCollator(tokenizer, max_history=int(recipe.get("max_history", 20)), keep_eval_fields=True)
    from .colarec_family import colarec_eval_collator

    return colarec_eval_collator(model, tokenizer, dataset, recipe)
