"""Ranking the catalogue: fast exact constrained beam search for generative models, exact top-k for
item scorers, and recommend().  (The trie of valid IDs and the ``generate()`` constraints live in
:mod:`hf_genrec.semantic_ids`; they are re-exported here for convenience.)"""

from ..semantic_ids.constraints import SemanticIdLogitsProcessor, make_prefix_allowed_tokens_fn
from ..semantic_ids.id_trie import SemanticIdTrie, build_id_trie
from .fast_beam_search import fast_beam_search
from .ranking import get_id_trie, rank_batch
from .recommend import histories_to_ids, item_key_map, recommend, recommend_by_key

__all__ = [
    "SemanticIdLogitsProcessor",
    "SemanticIdTrie",
    "build_id_trie",
    "fast_beam_search",
    "get_id_trie",
    "histories_to_ids",
    "item_key_map",
    "make_prefix_allowed_tokens_fn",
    "rank_batch",
    "recommend",
    "recommend_by_key",
]
