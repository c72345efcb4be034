"""The config fields of the causal stack that the item-sequence families share (``causal_transformer.py``)."""

from __future__ import annotations

from transformers import PretrainedConfig

from ..errors import ConfigError
from ..remote_code import RemoteCodeConfigMixin


class CausalTransformerConfig(RemoteCodeConfigMixin, PretrainedConfig):
    """Sizes of a causal self-attention stack over items (SASRec's names); a family's config adds its own fields.

    ``intermediate_size`` defaults to 4 x ``hidden_size``; ``max_position_embeddings`` is the longest history.
    """

    def __init__(
        self,
        hidden_size: int = 64,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 2,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.3,
        attention_probs_dropout_prob: float = 0.0,
        max_position_embeddings: int = 50,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        norm_first: bool = False,
        pad_token_id: int = 0,
        **kwargs,
    ) -> None:
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
        super().__init__(pad_token_id=pad_token_id, **kwargs)

    def positive_fields(self) -> tuple[str, ...]:
        """Fields that must be >= 1 (a family adds its own)."""
        return ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")

    def validate(self) -> None:
        """ConfigError naming the first field out of range."""
        name_of = type(self).__name__
        for name in self.positive_fields():
            if getattr(self, name) < 1:
                raise ConfigError(f"{name_of}.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name_of}.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.hidden_act not in ("gelu", "relu"):
            raise ConfigError(f"{name_of}.hidden_act must be gelu or relu, got {self.hidden_act!r}")


__all__ = ["CausalTransformerConfig"]
