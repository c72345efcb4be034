"""Decode users in order of history length, report them in their own order.

A batch's encoder input is padded to its longest history; Beauty's histories run from 1 to 20
items, so batches of mixed lengths spend most of the encoder and cross-attention work on padding.
Padding is masked out, so the order changes no result.
"""

from __future__ import annotations

from typing import Sequence

import torch


def length_order(lengths: Sequence[int]) -> tuple[list[int], torch.LongTensor]:
    """``order`` (positions sorted by length, stable) and ``inverse`` with ``sorted[inverse] == original``."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.as_tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return order, inverse
