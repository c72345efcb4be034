"""TIGER generative retriever (Rajput et al., 2023): configuration, model, data collator."""

from .collator_tiger import TigerDataCollator
from .configuration_tiger import TigerConfig, register_tiger_config
from .modeling_tiger import (
    TigerForGenerativeRecommendation,
    TigerLevelCache,
    TigerPreTrainedModel,
    register_tiger_auto_classes,
)

__all__ = [
    "TigerConfig",
    "TigerForGenerativeRecommendation",
    "TigerPreTrainedModel",
    "TigerLevelCache",
    "TigerDataCollator",
    "register_tiger_auto_classes",
    "register_tiger_config",
]
