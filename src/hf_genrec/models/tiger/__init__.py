"""TIGER generative retriever (Rajput et al., 2023): configuration, model, data collator."""

from .collator_tiger import TigerDataCollator
from .configuration_tiger import TigerConfig, register_tiger_config
from .modeling_tiger import TigerForGenerativeRecommendation, TigerPreTrainedModel


def register_tiger_auto_classes() -> None:
    """Register TIGER with AutoConfig / AutoModel / AutoModelForSeq2SeqLM and its tokenizer (idempotent).

    It lives here, not in modeling_tiger.py, because checkpoints carry modeling_tiger.py as remote
    code, and that file may only import modules that travel with it.
    """
    from transformers import AutoModel, AutoModelForSeq2SeqLM

    from ..genrec_tokenizer import register_genrec_tokenizer

    register_tiger_config()
    AutoModel.register(TigerConfig, TigerForGenerativeRecommendation, exist_ok=True)
    AutoModelForSeq2SeqLM.register(TigerConfig, TigerForGenerativeRecommendation, exist_ok=True)
    register_genrec_tokenizer()


__all__ = [
    "TigerConfig",
    "TigerForGenerativeRecommendation",
    "TigerPreTrainedModel",
    "TigerDataCollator",
    "register_tiger_auto_classes",
    "register_tiger_config",
]
