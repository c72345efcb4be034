"""Semantic IDs: the item <-> code-tuple table every item tokenizer writes and every generative model
reads, the trie of valid ID prefixes built from it, and the ``generate()`` constraints over that trie."""

from .constraints import SemanticIdLogitsProcessor, make_prefix_allowed_tokens_fn
from .id_table import SEMANTIC_ID_FILE, SemanticIdTable
from .id_trie import SemanticIdTrie, build_id_trie

__all__ = [
    "SEMANTIC_ID_FILE",
    "SemanticIdLogitsProcessor",
    "SemanticIdTable",
    "SemanticIdTrie",
    "build_id_trie",
    "make_prefix_allowed_tokens_fn",
]
