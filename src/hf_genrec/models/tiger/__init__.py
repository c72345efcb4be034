"""TIGER generative retriever (Rajput et al., 2023): configuration, model, processor; registered as family "tiger"."""

from .configuration_tiger import TigerConfig
from .family import TIGER, TigerRecipe
from .modeling_tiger import TigerForGenerativeRecommendation, TigerPreTrainedModel
from .processing_tiger import TigerDataCollator, TigerProcessor

__all__ = [
    "TIGER",
    "TigerConfig",
    "TigerDataCollator",
    "TigerForGenerativeRecommendation",
    "TigerPreTrainedModel",
    "TigerProcessor",
    "TigerRecipe",
]
