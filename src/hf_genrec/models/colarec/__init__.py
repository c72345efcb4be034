"""ColaRec (Wang et al., CIKM 2024): LightGCN item vectors -> constrained k-means GIDs -> a T5 that
generates the next item's GID from the content of the user's items."""

from .configuration_colarec import ColaRecConfig
from .constrained_kmeans import colarec_semantic_ids, constrained_kmeans, hierarchical_constrained_kmeans
from .lightgcn import LightGCNResult, evaluate_ranking, index_interactions, train_lightgcn
from .modeling_colarec import ColaRecForGenerativeRecommendation, ColaRecOutput, ColaRecPreTrainedModel


def register_colarec_auto_classes() -> None:
    """Register ColaRec with AutoConfig / AutoModel / AutoModelForSeq2SeqLM (safe to call repeatedly)."""
    from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

    try:
        AutoConfig.register(ColaRecConfig.model_type, ColaRecConfig)
    except ValueError:  # already registered
        pass
    for auto in (AutoModel, AutoModelForSeq2SeqLM):
        try:
            auto.register(ColaRecConfig, ColaRecForGenerativeRecommendation)
        except ValueError:
            pass


__all__ = [
    "ColaRecConfig",
    "ColaRecForGenerativeRecommendation",
    "ColaRecOutput",
    "ColaRecPreTrainedModel",
    "LightGCNResult",
    "colarec_semantic_ids",
    "constrained_kmeans",
    "evaluate_ranking",
    "hierarchical_constrained_kmeans",
    "index_interactions",
    "register_colarec_auto_classes",
    "train_lightgcn",
]
