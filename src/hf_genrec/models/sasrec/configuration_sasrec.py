"""Configuration of SASRec (Kang & McAuley, 2018): causal self-attention over item-id embeddings.

The package's cross-entropy variant (the baseline generative models must beat): learned positions
counted from the most recent item, tied input / output item embeddings, a softmax over the whole
catalogue at every position (or over ``num_negatives`` uniformly sampled items for catalogues too
large for a full softmax).
"""

from __future__ import annotations

from transformers import PretrainedConfig

from ...errors import ConfigError
from ...remote_code import RemoteCodeConfigMixin

LOSSES = ("full", "sampled")


class SASRecConfig(RemoteCodeConfigMixin, PretrainedConfig):
    """Sizes of a SASRec model; ``num_items`` is the catalogue (item rows 1..num_items, 0 = padding)."""

    model_type = "sasrec"
    remote_auto_map = {
        "AutoConfig": "configuration_sasrec.SASRecConfig",
        "AutoModel": "modeling_sasrec.SASRecForSequentialRecommendation",
    }

    def __init__(
        self,
        num_items: int = 1,
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
        loss: str = "full",
        num_negatives: int = 256,
        pad_token_id: int = 0,
        **kwargs,
    ) -> None:
        self.num_items = int(num_items)
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
        self.loss = loss
        self.num_negatives = int(num_negatives)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.validate()

    def validate(self) -> None:
        """ConfigError naming the first field out of range."""
        for name in ("num_items", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "num_negatives"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SASRecConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"SASRecConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"SASRecConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.hidden_act not in ("gelu", "relu"):
            raise ConfigError(f"SASRecConfig.hidden_act must be gelu or relu, got {self.hidden_act!r}")


__all__ = ["LOSSES", "SASRecConfig"]
