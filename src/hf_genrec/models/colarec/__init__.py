"""ColaRec (Wang et al., CIKM 2024): a T5 that generates the next item's GID (LightGCN + constrained
k-means, built in ``hf_genrec.item_tokenizers``) from the content of the user's items; registered as family "colarec"."""

from .configuration_colarec import ColaRecConfig
from .family import COLAREC, ColaRecRecipe
from .modeling_colarec import ColaRecForGenerativeRecommendation, ColaRecOutput, ColaRecPreTrainedModel
from .processing_colarec import ColaRecCollator, ColaRecFeatures, ColaRecProcessor

__all__ = [
    "COLAREC",
    "ColaRecCollator",
    "ColaRecConfig",
    "ColaRecFeatures",
    "ColaRecForGenerativeRecommendation",
    "ColaRecOutput",
    "ColaRecPreTrainedModel",
    "ColaRecProcessor",
    "ColaRecRecipe",
]
