"""Recipe fields of the item-sequence families (SASRec, RPG): one causal-stack shape for both, and what they train on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data import RecDataset
from ..recipes.genrec_recipe import FamilyRecipe, check_non_negative
from .item_sequences import ItemSequenceCollator, ItemSequenceProcessor, sequence_examples
from .processing_utils import with_length_column
from .registry import FamilyComponents


@dataclass
class CausalTransformerRecipe(FamilyRecipe):
    """The causal stack's sizes; the shared ``max_history`` is its longest history."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int | None = field(default=None, metadata={"help": "feed-forward width (default 4 x hidden_size)"})
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.3
    attention_probs_dropout_prob: float = 0.0
    norm_first: bool = field(default=False, metadata={"help": "LayerNorm before each sublayer (default: after, as SASRec)"})

    def __post_init__(self) -> None:
        check_non_negative(self, ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"), minimum=1)
        check_non_negative(self, ("hidden_dropout_prob", "attention_probs_dropout_prob"))

    def config_kwargs(self) -> dict[str, Any]:
        """Every recipe field that is also a config field (the family's own fields included)."""
        names = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                 "hidden_dropout_prob", "attention_probs_dropout_prob", "norm_first", *self.family_config_fields())
        return {name: getattr(self, name) for name in names}

    def family_config_fields(self) -> tuple[str, ...]:
        return ()


def item_sequence_components(model: Any, processor: ItemSequenceProcessor, dataset: RecDataset,
                             max_history: int) -> FamilyComponents:
    """A causal family's components: every position of each training sequence (length-grouped rows) and its collator."""
    return FamilyComponents(
        model=model,
        processor=processor,
        train_dataset=with_length_column(sequence_examples(dataset.train_sequences(), max_history)),
        train_collator=ItemSequenceCollator(processor),
    )


__all__ = ["CausalTransformerRecipe", "item_sequence_components"]
