"""RQ-VAE item tokenizer (TIGER): configuration, model, and Auto-class registration."""

from __future__ import annotations

from ...remote_code import register_auto_classes
from .configuration_rqvae import RQVAETokenizerConfig
from .modeling_rqvae import RQVAETokenizerModel, RQVAETokenizerOutput, RQVAETokenizerPreTrainedModel

register_auto_classes(RQVAETokenizerConfig, RQVAETokenizerModel, ["AutoModel"])

__all__ = [
    "RQVAETokenizerConfig",
    "RQVAETokenizerModel",
    "RQVAETokenizerOutput",
    "RQVAETokenizerPreTrainedModel",
]
