"""RPG (Hou et al., KDD 2025): long semantic IDs (OPQ digits) predicted in parallel by a causal transformer;
registered as family "rpg"."""

from .configuration_rpg import RPGConfig
from .family import RPG, RPGRecipe
from .modeling_rpg import RPGForGenerativeRecommendation, RPGPreTrainedModel
from .processing_rpg import RPGProcessor

__all__ = ["RPG", "RPGConfig", "RPGForGenerativeRecommendation", "RPGPreTrainedModel", "RPGProcessor", "RPGRecipe"]
