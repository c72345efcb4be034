"""SASRec as a registered family: its recipe fields and how a recipe builds it (no semantic IDs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict

from ...data import RecDataset
from ...errors import ConfigError
from ...recipes.genrec_recipe import FamilyRecipe, check_non_negative
from ..processing_utils import with_length_column
from ..registry import FamilyComponents, ModelFamily, register_family
from .configuration_sasrec import LOSSES, SASRecConfig
from .modeling_sasrec import SASRecForSequentialRecommendation
from ..item_sequences import ItemSequenceCollator, sequence_examples
from .processing_sasrec import SASRecProcessor


@dataclass
class SASRecRecipe(FamilyRecipe):
    """SASRec's own recipe fields; ``max_history`` (shared) is its maximum sequence length."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int | None = field(default=None, metadata={"help": "feed-forward width (default 4 x hidden_size)"})
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.3
    attention_probs_dropout_prob: float = 0.0
    norm_first: bool = field(default=False, metadata={"help": "LayerNorm before each sublayer (default: after, as SASRec)"})
    loss: str = field(default="full", metadata={"help": "full (softmax over the catalogue) or sampled (num_negatives uniform items)"})
    num_negatives: int = 256

    def __post_init__(self) -> None:
        check_non_negative(self, ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                  "num_negatives"), minimum=1)
        check_non_negative(self, ("hidden_dropout_prob", "attention_probs_dropout_prob"))
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")

    def config_kwargs(self) -> dict[str, Any]:
        names = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                 "hidden_dropout_prob", "attention_probs_dropout_prob", "norm_first", "loss", "num_negatives")
        return {name: getattr(self, name) for name in names}


def build_sasrec(recipe: Any, family_recipe: SASRecRecipe, dataset: RecDataset, splits: DatasetDict,
                 table: Any, seed: int) -> FamilyComponents:
    processor = SASRecProcessor(dataset.catalogue.item_ids, max_history=recipe.max_history)
    config = SASRecConfig(
        num_items=len(processor.item_ids), max_position_embeddings=recipe.max_history, **family_recipe.config_kwargs()
    )
    return FamilyComponents(
        model=SASRecForSequentialRecommendation(config),
        processor=processor,
        train_dataset=with_length_column(sequence_examples(dataset.train_sequences(), recipe.max_history)),
        train_collator=ItemSequenceCollator(processor),
    )


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
