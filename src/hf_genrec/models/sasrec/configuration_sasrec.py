"""Configuration of SASRec (Kang & McAuley, 2018): causal self-attention over item-id embeddings.

The package's cross-entropy variant (the baseline generative models must beat): learned positions
counted from the most recent item, tied input / output item embeddings, a softmax over the whole
catalogue at every position (or over ``num_negatives`` uniformly sampled items for catalogues too
large for a full softmax).
"""

from __future__ import annotations

from ...errors import ConfigError
from ..configuration_causal_transformer import CausalTransformerConfig

LOSSES = ("full", "sampled")


class SASRecConfig(CausalTransformerConfig):
    """Sizes of a SASRec model; ``num_items`` is the catalogue (item rows 1..num_items, 0 = padding)."""

    model_type = "sasrec"
    remote_auto_map = {
        "AutoConfig": "configuration_sasrec.SASRecConfig",
        "AutoModel": "modeling_sasrec.SASRecForSequentialRecommendation",
    }

    def __init__(self, num_items: int = 1, loss: str = "full", num_negatives: int = 256, **kwargs) -> None:
        self.num_items = int(num_items)
        self.loss = loss
        self.num_negatives = int(num_negatives)
        super().__init__(**kwargs)  # the causal stack's sizes; SASRec's defaults are the base's
        self.validate()

    def positive_fields(self) -> tuple[str, ...]:
        return (*super().positive_fields(), "num_items", "num_negatives")

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSSES:
            raise ConfigError(f"SASRecConfig.loss must be one of {LOSSES}, got {self.loss!r}")


__all__ = ["LOSSES", "SASRecConfig"]
