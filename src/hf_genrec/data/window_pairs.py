"""Pairs of items consumed close together: the one definition behind co-occurrence IDs and LoRA item pairs."""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

from ..errors import InvalidInputError


def window_pairs(
    sequences: Mapping[int, Sequence[int]] | Sequence[Sequence[int]], window: int
) -> Iterator[tuple[int, int, int]]:
    """``(user, item, later item)`` for every two items at most ``window`` positions apart in a user's
    sequence (never an item with itself); users in id order, positions in sequence order."""
    if window < 1:
        raise InvalidInputError(f"window must be >= 1, got {window}")
    named = sorted(sequences.items()) if isinstance(sequences, Mapping) else enumerate(sequences)
    for user, items in named:
        items = [int(i) for i in items]
        for index, anchor in enumerate(items):
            for later in items[index + 1 : index + 1 + window]:
                if later != anchor:
                    yield user, anchor, later


__all__ = ["window_pairs"]
