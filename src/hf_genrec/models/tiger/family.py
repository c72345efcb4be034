"""TIGER as a registered family: its recipe fields and how a recipe builds it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict

from ...data import RecDataset
from ...errors import ConfigError
from ...semantic_ids.id_table import SemanticIdTable
from ..genrec_tokenizer.tokenization_genrec import GenRecTokenizer
from ..processing_utils import with_length_column
from ..registry import FamilyComponents, ModelFamily, register_family
from ..t5_recipe import T5ShapeRecipe
from .configuration_tiger import TigerConfig
from .modeling_tiger import TigerForGenerativeRecommendation
from .processing_tiger import TigerDataCollator, TigerProcessor


@dataclass
class TigerRecipe(T5ShapeRecipe):
    """TIGER's own recipe fields (besides the T5 shape)."""

    num_user_buckets: int = field(default=2000, metadata={"help": "hashed user tokens (TIGER: 2000; 0: none)"})
    init_from_t5: str | None = field(default=None, metadata={"help": "optional pretrained T5 name or path"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_user_buckets < 0:
            raise ConfigError(f"num_user_buckets must be >= 0, got {self.num_user_buckets}")


def build_tiger(recipe: Any, family_recipe: TigerRecipe, dataset: RecDataset, splits: DatasetDict,
                table: SemanticIdTable, seed: int) -> FamilyComponents:
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=family_recipe.num_user_buckets)
    if family_recipe.init_from_t5:
        model = TigerForGenerativeRecommendation.from_t5_pretrained(family_recipe.init_from_t5, tokenizer)
    else:
        model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **family_recipe.t5_shape()))
    processor = TigerProcessor(tokenizer, max_history=recipe.max_history)
    return FamilyComponents(
        model=model,
        processor=processor,
        train_dataset=with_length_column(splits["train"]),
        train_collator=TigerDataCollator(processor),
        tokenizer=tokenizer,
    )


def load_legacy_tiger_processor(model_dir: str | os.PathLike, recipe: dict, dataset: RecDataset | None) -> TigerProcessor:
    """A checkpoint saved before processors were: its tokenizer and its recipe's ``max_history``."""
    return TigerProcessor(GenRecTokenizer.from_pretrained(model_dir, trust_remote_code=False), max_history=int(recipe.get("max_history", 20)))


TIGER = register_family(
    ModelFamily(
        name="tiger",
        config_class=TigerConfig,
        model_class=TigerForGenerativeRecommendation,
        processor_class=TigerProcessor,
        recipe_class=TigerRecipe,
        build=build_tiger,
        card_template="tiger.md",
        card_tags=("tiger", "sequential-recommendation"),
        task_name="Sequential Recommendation",
        tokenizer_class=GenRecTokenizer,
        load_processor=load_legacy_tiger_processor,
    )
)

__all__ = ["TIGER", "TigerRecipe", "build_tiger"]
