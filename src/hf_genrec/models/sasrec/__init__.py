"""SASRec (Kang & McAuley, 2018) with a full cross-entropy loss: the sequential baseline, registered as family "sasrec"."""

from .configuration_sasrec import SASRecConfig
from .family import SASREC, SASRecRecipe
from .modeling_sasrec import SASRecForSequentialRecommendation, SASRecPreTrainedModel
from .processing_sasrec import SASRecProcessor

__all__ = [
    "SASREC",
    "SASRecConfig",
    "SASRecForSequentialRecommendation",
    "SASRecPreTrainedModel",
    "SASRecProcessor",
    "SASRecRecipe",
]
