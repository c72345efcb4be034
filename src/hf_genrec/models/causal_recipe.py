"""Recipe fields of the item-sequence families (SASRec, RPG): one causal-stack shape for both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..recipes.genrec_recipe import FamilyRecipe, check_non_negative


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


__all__ = ["CausalTransformerRecipe"]
