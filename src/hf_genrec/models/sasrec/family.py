"""SASRec as a registered family: its recipe fields and how a recipe builds it (no semantic IDs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict

from ...data import RecDataset
from ...errors import ConfigError
from ...recipes.genrec_recipe import check_non_negative
from ..causal_recipe import CausalTransformerRecipe, item_sequence_components
from ..registry import FamilyComponents, ModelFamily, register_family
from .configuration_sasrec import LOSSES, SASRecConfig
from .modeling_sasrec import SASRecForSequentialRecommendation
from .processing_sasrec import SASRecProcessor


@dataclass
class SASRecRecipe(CausalTransformerRecipe):
    """SASRec's own recipe fields besides the causal stack's; ``max_history`` (shared) is its longest sequence."""

    loss: str = field(default="full", metadata={"help": "full (softmax over the catalogue) or sampled (num_negatives uniform items)"})
    num_negatives: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        check_non_negative(self, ("num_negatives",), minimum=1)
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")

    def family_config_fields(self) -> tuple[str, ...]:
        return ("loss", "num_negatives")


def build_sasrec(recipe: Any, family_recipe: SASRecRecipe, dataset: RecDataset, splits: DatasetDict,
                 table: Any, seed: int) -> FamilyComponents:
    keys = dataset.item_keys  # an imported dataset's original keys travel in processor_config.json
    processor = SASRecProcessor(
        dataset.catalogue.item_ids, max_history=recipe.max_history,
        item_keys=keys.keys_of(dataset.catalogue.item_ids) if keys is not None else None,
    )
    config = SASRecConfig(
        num_items=len(processor.item_ids), max_position_embeddings=recipe.max_history, **family_recipe.config_kwargs()
    )
    return item_sequence_components(SASRecForSequentialRecommendation(config), processor, dataset, recipe.max_history)


SASREC = register_family(
    ModelFamily(
        name="sasrec",
        config_class=SASRecConfig,
        model_class=SASRecForSequentialRecommendation,
        processor_class=SASRecProcessor,
        recipe_class=SASRecRecipe,
        build=build_sasrec,
        card_template="sasrec.md",
        card_tags=("sasrec", "sequential-recommendation"),
        task_name="Sequential Recommendation",
        auto_classes=("AutoModel",),
        uses_semantic_ids=False,
        semantic_id_method=None,
    )
)

__all__ = ["SASREC", "SASRecRecipe", "build_sasrec"]
