"""Constrained decoding of semantic IDs: ID tables, generate() constraints, fast beam search, recommend()."""

from .constrained import SemanticIdLogitsProcessor, make_prefix_allowed_tokens_fn
from .fast_beam_search import fast_beam_search
from .id_tables import SemanticIdTables, build_id_tables
from .recommend import get_id_tables, recommend

__all__ = [
    "SemanticIdTables",
    "build_id_tables",
    "make_prefix_allowed_tokens_fn",
    "SemanticIdLogitsProcessor",
    "fast_beam_search",
    "recommend",
    "get_id_tables",
]
