"""RPG as a registered family: its recipe fields and how a recipe builds it (OPQ semantic IDs by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import DatasetDict

from ...data import RecDataset
from ...errors import ConfigError
from ...recipes.genrec_recipe import check_non_negative
from ..causal_recipe import CausalTransformerRecipe, item_sequence_components
from ...semantic_ids.id_table import SemanticIdTable
from ..registry import FamilyComponents, ModelFamily, register_family
from .configuration_rpg import INPUT_AGGREGATIONS, RPGConfig
from .modeling_rpg import RPGForGenerativeRecommendation
from .processing_rpg import RPGProcessor


@dataclass
class RPGRecipe(CausalTransformerRecipe):
    """RPG's own recipe fields besides the causal stack's; the ID shape (digits, codes a digit) comes from the
    item-tokenizer recipe."""

    hidden_size: int = 128
    num_attention_heads: int = 4
    logit_temperature: float = field(default=0.03, metadata={"help": "cosine logits are divided by it"})
    input_aggregation: str = field(default="mean", metadata={"help": "an item's input: mean or sum of its code embeddings"})
    item_loss_weight: float = field(
        default=0.0, metadata={"help": "weight of a softmax over whole items (an item's logit: the mean of its digits') beside the digit losses"}
    )
    item_loss_positions: int = field(default=512, metadata={"help": "sampled positions a batch the item softmax is computed at"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.logit_temperature > 0:
            raise ConfigError(f"logit_temperature must be > 0, got {self.logit_temperature}")
        if self.input_aggregation not in INPUT_AGGREGATIONS:
            raise ConfigError(f"input_aggregation must be one of {INPUT_AGGREGATIONS}, got {self.input_aggregation!r}")
        check_non_negative(self, ("item_loss_weight",))
        check_non_negative(self, ("item_loss_positions",), minimum=1)

    def family_config_fields(self) -> tuple[str, ...]:
        return ("logit_temperature", "input_aggregation", "item_loss_weight", "item_loss_positions")


def build_rpg(recipe: Any, family_recipe: RPGRecipe, dataset: RecDataset, splits: DatasetDict,
              table: SemanticIdTable, seed: int) -> FamilyComponents:
    processor = RPGProcessor(table, max_history=recipe.max_history)
    digits = table.content_levels
    config = RPGConfig(
        num_items=table.num_items, num_digits=digits, codebook_size=max(table.codebook_sizes[:digits]),
        max_position_embeddings=recipe.max_history, **family_recipe.config_kwargs(),
    )
    model = RPGForGenerativeRecommendation(config)
    model.set_item_codes(torch.as_tensor(processor.item_codes))
    return item_sequence_components(model, processor, dataset, recipe.max_history)


RPG = register_family(
    ModelFamily(
        name="rpg",
        config_class=RPGConfig,
        model_class=RPGForGenerativeRecommendation,
        processor_class=RPGProcessor,
        recipe_class=RPGRecipe,
        build=build_rpg,
        card_template="rpg.md",
        card_tags=("rpg", "sequential-recommendation", "long-semantic-ids"),
        task_name="Sequential Recommendation",
        auto_classes=("AutoModel",),
        semantic_id_method="opq",
    )
)

__all__ = ["RPG", "RPGRecipe", "build_rpg"]
