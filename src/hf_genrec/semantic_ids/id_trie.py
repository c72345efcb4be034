"""Per-level transition tables of the valid semantic IDs, built once from a SemanticIdTable.

A *state* at level ``l`` is one distinct prefix of length ``l`` (level 0 has the single empty
prefix).  Appending code ``c`` to prefix ``s`` reaches a state at level ``l + 1`` -- at the last
level, the row of the item in the table -- or ``-1`` when no item has that prefix.  Each level
stores this map in one of two forms, chosen by size; both answer identically:

* a dense table ``[num_prefixes_l, K_l]`` (int32): constraining a decoder is one gather per level,
  with no Python loop over beams;
* a *counted* level, where every prefix's codes are exactly ``0 .. count - 1`` (the disambiguation
  level always is): ``count[s]`` and ``children[offset[s] + c]``, memory linear in the catalogue.
  A dense last level of a million items, 566 of which share one content prefix, would hold
  270k x 566 entries (1.2 GB); the counted form holds 1.3M.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from .id_table import SemanticIdTable, pack_codes


@dataclass(frozen=True, eq=False)
class CountedLevel:
    """Transitions of a level whose codes under each prefix are ``0 .. count - 1``: prefix ``s``'s
    code ``c`` leads to ``children[offset[s] + c]`` when ``c < count[s]``."""

    offset: torch.Tensor  # [num_prefixes] int64
    count: torch.Tensor  # [num_prefixes] int64
    children: torch.Tensor  # [num_children] int64, grouped by prefix, in code order

    def to(self, device: torch.device) -> "CountedLevel":
        return CountedLevel(self.offset.to(device), self.count.to(device), self.children.to(device))

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.offset, self.count, self.children))


@dataclass(frozen=True, eq=False)
class SemanticIdTrie:
    """Transition tables plus the row -> item id map; immutable, so safe to share between threads.

    ``next_state[l]`` is a dense int32 table ``[num_prefixes_l, K_l]`` or a :class:`CountedLevel`.
    """

    next_state: tuple[torch.Tensor | CountedLevel, ...]
    item_ids: torch.Tensor  # [num_items] item id of each table row
    codebook_sizes: tuple[int, ...]

    @property
    def num_levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def num_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def device(self) -> torch.device:
        return self.item_ids.device

    def to(self, device: torch.device | str) -> "SemanticIdTrie":
        device = torch.device(device)
        if device == self.device:
            return self
        return SemanticIdTrie(tuple(t.to(device) for t in self.next_state), self.item_ids.to(device), self.codebook_sizes)

    @cached_property
    def sorted_item_ids(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``item_ids`` sorted, and the table row of each: item id -> row by binary search, sorted once."""
        return self.item_ids.sort()

    def step(self, level: int, state: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """States after appending ``codes`` to prefixes ``state`` (both [N]); -1 stays -1 and marks invalid."""
        table = self.next_state[level]
        size = self.codebook_sizes[level]
        valid = (state >= 0) & (codes >= 0) & (codes < size)
        safe_state, safe_codes = state.clamp(min=0), codes.clamp(0, size - 1)
        if isinstance(table, CountedLevel):
            valid &= safe_codes < table.count[safe_state]
            position = (table.offset[safe_state] + safe_codes).clamp(max=max(table.children.numel() - 1, 0))
            nxt = table.children[position]
        else:
            nxt = table[safe_state, safe_codes].long()
        return torch.where(valid, nxt, torch.full_like(nxt, -1))

    def allowed(self, level: int, state: torch.Tensor) -> torch.Tensor:
        """Boolean mask [N, K_level] of the codes that keep each prefix valid (all False for state -1)."""
        table = self.next_state[level]
        safe_state = state.clamp(min=0)
        if isinstance(table, CountedLevel):
            codes = torch.arange(self.codebook_sizes[level], device=state.device)
            rows = codes[None, :] < table.count[safe_state][:, None]
        else:
            rows = table[safe_state] >= 0
        return rows & (state >= 0)[:, None]

    def dense_level(self, level: int) -> torch.Tensor:
        """Level ``level``'s transitions as a dense int32 table ``[num_prefixes, K]`` (-1: no such child),
        whichever form the trie keeps it in (a model that embeds every node reads it this way)."""
        table = self.next_state[level]
        if not isinstance(table, CountedLevel):
            return table
        dense = torch.full((table.count.numel(), self.codebook_sizes[level]), -1, dtype=torch.int32, device=self.device)
        prefix = torch.repeat_interleave(torch.arange(table.count.numel(), device=self.device), table.count)
        code = torch.arange(table.children.numel(), device=self.device) - table.offset[prefix]
        dense[prefix, code] = table.children.to(torch.int32)
        return dense

    def state_of(self, codes: torch.Tensor) -> torch.Tensor:
        """State (or, for full IDs, item row) of code prefixes [N, l]; -1 where the prefix names no item."""
        state = torch.zeros(codes.shape[0], dtype=torch.long, device=codes.device)
        for level in range(codes.shape[1]):
            state = self.step(level, state, codes[:, level])
        return state

    def memory_bytes(self) -> int:
        tables = sum(t.memory_bytes() if isinstance(t, CountedLevel) else t.numel() * t.element_size() for t in self.next_state)
        return tables + self.item_ids.numel() * 8


def build_id_trie(table: SemanticIdTable, device: torch.device | str = "cpu") -> SemanticIdTrie:
    """Build the transition tables of ``table`` (vectorised: ~0.1 s for 12k items, ~2 s for a million)."""
    codes = np.asarray(table.codes, dtype=np.int64)
    n, levels = codes.shape
    # prefix index of every item at every depth 0..levels-1 (depth 0: the empty prefix, index 0)
    prefix_index = [np.zeros(n, dtype=np.int64)]
    for depth in range(1, levels):
        packed = pack_codes(codes[:, :depth], table.codebook_sizes[:depth])  # one int64 a prefix: sorts fast
        _, inverse = np.unique(codes[:, :depth] if packed is None else packed, axis=0 if packed is None else None, return_inverse=True)
        prefix_index.append(inverse.reshape(-1).astype(np.int64))
    next_state = []
    for level in range(levels):
        num_prefixes = int(prefix_index[level].max()) + 1 if n else 1
        target = prefix_index[level + 1] if level + 1 < levels else np.arange(n, dtype=np.int64)
        next_state.append(_level(prefix_index[level], codes[:, level], target, num_prefixes, table.codebook_sizes[level], device))
    return SemanticIdTrie(
        next_state=tuple(next_state),
        item_ids=torch.tensor(table.item_ids, dtype=torch.long, device=device),
        codebook_sizes=tuple(table.codebook_sizes),
    )


def _level(prefix: np.ndarray, code: np.ndarray, target: np.ndarray, num_prefixes: int, size: int,
           device: torch.device | str) -> torch.Tensor | CountedLevel:
    """One level's transitions: counted when its codes are 0..count-1 under every prefix and that is smaller."""
    # one entry per distinct (prefix, code) edge: several items share an edge above the last level
    edge = prefix * size + code
    order = np.argsort(edge, kind="stable")
    first = np.ones(len(order), dtype=bool)
    first[1:] = edge[order][1:] != edge[order][:-1]
    edges = order[first]  # rows, grouped by prefix, codes ascending
    edge_prefix, edge_code, edge_target = prefix[edges], code[edges], target[edges]
    count = np.bincount(edge_prefix, minlength=num_prefixes)
    offset = np.cumsum(count) - count
    contiguous = bool((edge_code == np.arange(len(edges)) - offset[edge_prefix]).all())
    if contiguous and 3 * num_prefixes + len(edges) < num_prefixes * size / 2:  # int64 x 3 vs int32 dense
        return CountedLevel(*(torch.from_numpy(a).to(device) for a in (offset, count, edge_target)))
    dense = np.full((num_prefixes, size), -1, dtype=np.int32)
    dense[edge_prefix, edge_code] = edge_target
    return torch.from_numpy(dense).to(device)


__all__ = ["CountedLevel", "SemanticIdTrie", "build_id_trie"]
