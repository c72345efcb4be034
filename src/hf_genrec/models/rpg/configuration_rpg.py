"""Configuration of RPG (Hou et al., KDD 2025): long semantic IDs predicted in parallel.

Every item is ``num_digits`` independent codes of ``codebook_size`` (OPQ of its text embedding,
optionally mixed with its co-occurring items').  A causal transformer reads a history as the mean
of each item's code embeddings and predicts all digits of the next item at once; the item's score
is the sum of its digits' log-probabilities.
"""

from __future__ import annotations

from transformers import PretrainedConfig

from ...errors import ConfigError
from ...remote_code import RemoteCodeConfigMixin

INPUT_AGGREGATIONS = ("mean", "sum")


class RPGConfig(RemoteCodeConfigMixin, PretrainedConfig):
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
        hidden_size: int = 128,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 4,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.3,
        attention_probs_dropout_prob: float = 0.0,
        max_position_embeddings: int = 50,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        norm_first: bool = False,
        logit_temperature: float = 0.03,
        input_aggregation: str = "mean",
        pad_token_id: int = 0,
        **kwargs,
    ) -> None:
        self.num_items = int(num_items)
        self.num_digits = int(num_digits)
        self.codebook_size = int(codebook_size)
        self.hidden_size = int(hidden_size)
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.intermediate_size = int(intermediate_size) if intermediate_size is not None else 4 * self.hidden_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = float(hidden_dropout_prob)
        self.attention_probs_dropout_prob = float(attention_probs_dropout_prob)
        self.max_position_embeddings = int(max_position_embeddings)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.norm_first = bool(norm_first)
        self.logit_temperature = float(logit_temperature)
        self.input_aggregation = input_aggregation
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.validate()

    def validate(self) -> None:
        """ConfigError naming the first field out of range."""
        for name in ("num_items", "num_digits", "codebook_size", "hidden_size", "num_hidden_layers",
                     "num_attention_heads", "intermediate_size", "max_position_embeddings"):
            if getattr(self, name) < 1:
                raise ConfigError(f"RPGConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"RPGConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.logit_temperature > 0:
            raise ConfigError(f"RPGConfig.logit_temperature must be > 0, got {self.logit_temperature}")
        if self.input_aggregation not in INPUT_AGGREGATIONS:
            raise ConfigError(f"RPGConfig.input_aggregation must be one of {INPUT_AGGREGATIONS}, got {self.input_aggregation!r}")
        if self.hidden_act not in ("gelu", "relu"):
            raise ConfigError(f"RPGConfig.hidden_act must be gelu or relu, got {self.hidden_act!r}")


__all__ = ["INPUT_AGGREGATIONS", "RPGConfig"]
