"""Configuration of RPG (Hou et al., KDD 2025): long semantic IDs predicted in parallel.

Every item is ``num_digits`` independent codes of ``codebook_size`` (OPQ of its text embedding,
optionally mixed with its co-occurring items').  A causal transformer reads a history as the mean
of each item's code embeddings and predicts all digits of the next item at once; the item's score
is the sum of its digits' log-probabilities.  ``item_loss_weight`` adds a softmax over whole items
(computed at ``item_loss_positions`` sampled positions a batch) to the per-digit losses.
"""

from __future__ import annotations

from ...errors import ConfigError
from ..configuration_causal_transformer import CausalTransformerConfig

INPUT_AGGREGATIONS = ("mean", "sum")


class RPGConfig(CausalTransformerConfig):
    """Sizes of an RPG model; ``num_items`` item rows (row r has the codes ``item_codes[r]``), 0 = padding."""

    model_type = "rpg"
    remote_auto_map = {
        "AutoConfig": "configuration_rpg.RPGConfig",
        "AutoModel": "modeling_rpg.RPGForGenerativeRecommendation",
    }

    def __init__(
        self,
        num_items: int = 1,
        num_digits: int = 32,
        codebook_size: int = 256,
        logit_temperature: float = 0.03,
        input_aggregation: str = "mean",
        item_loss_weight: float = 0.0,
        item_loss_positions: int = 512,
        hidden_size: int = 128,
        num_attention_heads: int = 4,
        **kwargs,
    ) -> None:
        self.num_items = int(num_items)
        self.num_digits = int(num_digits)
        self.codebook_size = int(codebook_size)
        self.logit_temperature = float(logit_temperature)
        self.input_aggregation = input_aggregation
        self.item_loss_weight = float(item_loss_weight)
        self.item_loss_positions = int(item_loss_positions)
        super().__init__(hidden_size=hidden_size, num_attention_heads=num_attention_heads, **kwargs)
        self.validate()

    def positive_fields(self) -> tuple[str, ...]:
        return (*super().positive_fields(), "num_items", "num_digits", "codebook_size", "item_loss_positions")

    def validate(self) -> None:
        super().validate()
        if not self.logit_temperature > 0:
            raise ConfigError(f"RPGConfig.logit_temperature must be > 0, got {self.logit_temperature}")
        if not self.item_loss_weight >= 0:
            raise ConfigError(f"RPGConfig.item_loss_weight must be >= 0, got {self.item_loss_weight}")
        if self.input_aggregation not in INPUT_AGGREGATIONS:
            raise ConfigError(f"RPGConfig.input_aggregation must be one of {INPUT_AGGREGATIONS}, got {self.input_aggregation!r}")


__all__ = ["INPUT_AGGREGATIONS", "RPGConfig"]
