"""Item tokenizers: everything that gives a catalogue its semantic IDs (a ``SemanticIdTable``).

RQ-VAE (``rqvae/``, a ``PreTrainedModel``), residual k-means (``rqkmeans.py``), optimized product
quantisation for long parallel IDs (``opq.py``), the co-occurrence
mix of text embeddings (``cooccurrence.py``), and ColaRec's GIDs (``lightgcn.py`` +
``constrained_kmeans.py``), over one k-means core (``kmeans.py``) and one standardisation
(``standardize.py``).  :func:`build_semantic_ids` is the one entry for all of them.
"""

from .build import SemanticIdBuild, build_semantic_ids, fit_opq_tokenizer, fit_rqkmeans_tokenizer
from .opq import OPQConfig, OPQTokenizer
from .rqkmeans import RQKMeansConfig, RQKMeansTokenizer, rqkmeans_semantic_ids
from .rqvae import RQVAETokenizerConfig, RQVAETokenizerModel

__all__ = [
    "OPQConfig",
    "OPQTokenizer",
    "RQKMeansConfig",
    "RQKMeansTokenizer",
    "RQVAETokenizerConfig",
    "RQVAETokenizerModel",
    "SemanticIdBuild",
    "build_semantic_ids",
    "fit_opq_tokenizer",
    "fit_rqkmeans_tokenizer",
    "rqkmeans_semantic_ids",
]
