"""Content embeddings pulled toward the items users consume alongside them, before quantisation.

Semantic IDs from text alone put an item next to items that *read* alike; a generative recommender
is easier to train when items that are *consumed* together also share ID prefixes (LETTER,
ColaRec).  This adds collaborative signal without a second model: every item's standardised
embedding gets the count-weighted mean of its neighbours' (items within ``window`` positions of it
in some user's training sequence) added with weight ``weight``.  Items without neighbours keep
their content embedding.  Only training sequences may be passed: validation and test targets
must not shape the IDs.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

import torch

from ..data.window_pairs import window_pairs
from ..errors import InvalidInputError
from .standardize import standardize


def cooccurrence_counts(
    sequences: Mapping[int, Sequence[int]] | Sequence[Sequence[int]], item_ids: Sequence[int], window: int
) -> torch.Tensor:
    """Symmetric sparse ``[N, N]`` counts of item pairs at most ``window`` positions apart (rows: ``item_ids`` order)."""
    row_of = {int(item): row for row, item in enumerate(item_ids)}
    pairs: Counter[tuple[int, int]] = Counter()
    for user, a, b in window_pairs(sequences, window):
        try:
            ra, rb = row_of[a], row_of[b]
        except KeyError as err:
            raise InvalidInputError(f"training sequence of user {user} holds item {err.args[0]}, which the catalogue lacks") from None
        pairs[(ra, rb)] += 1
        pairs[(rb, ra)] += 1
    n = len(item_ids)
    index = torch.tensor(list(pairs.keys()), dtype=torch.long).reshape(-1, 2).T
    counts = torch.tensor(list(pairs.values()), dtype=torch.float32)
    return torch.sparse_coo_tensor(index, counts, (n, n), check_invariants=True).coalesce()


def smooth_with_cooccurrence(
    embeddings: torch.Tensor,
    item_ids: Sequence[int],
    sequences: Mapping[int, Sequence[int]] | Sequence[Sequence[int]],
    weight: float,
    window: int = 3,
) -> torch.Tensor:
    """``z + weight * mean of neighbours' z`` with ``z`` the per-dimension standardised embeddings."""
    if weight < 0:
        raise InvalidInputError(f"co-occurrence weight must be >= 0, got {weight}")
    if embeddings.ndim != 2 or embeddings.shape[0] != len(item_ids):
        raise InvalidInputError(f"embeddings of shape {tuple(embeddings.shape)} for {len(item_ids)} items")
    z = standardize(embeddings)
    if weight == 0:
        return z
    counts = cooccurrence_counts(sequences, item_ids, window)
    degree = torch.sparse.sum(counts, 1).to_dense()
    neighbours = torch.sparse.mm(counts, z) / degree.clamp_min(1)[:, None]
    return z + weight * neighbours


__all__ = ["cooccurrence_counts", "smooth_with_cooccurrence"]
