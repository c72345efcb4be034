"""RQ-VAE item tokenizer (TIGER): configuration, model, and Auto-class registration."""

from __future__ import annotations

from .configuration_rqvae import RQVAETokenizerConfig
from .modeling_rqvae import RQVAETokenizerModel, RQVAETokenizerOutput, RQVAETokenizerPreTrainedModel

_registered = False


def register_rqvae_auto_classes() -> None:
    """Register with AutoConfig/AutoModel so ``AutoModel.from_pretrained`` finds the class; idempotent."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoModel
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if RQVAETokenizerConfig.model_type not in CONFIG_MAPPING:
        AutoConfig.register(RQVAETokenizerConfig.model_type, RQVAETokenizerConfig)
    try:
        AutoModel.register(RQVAETokenizerConfig, RQVAETokenizerModel)
    except ValueError:  # already registered (e.g. by an earlier import path)
        pass
    _registered = True


__all__ = [
    "RQVAETokenizerConfig",
    "RQVAETokenizerModel",
    "RQVAETokenizerOutput",
    "RQVAETokenizerPreTrainedModel",
    "register_rqvae_auto_classes",
]
