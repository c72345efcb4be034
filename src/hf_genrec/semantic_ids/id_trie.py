"""Per-level transition tables of the valid semantic IDs, built once from a SemanticIdTable.

A *state* at level ``l`` is one distinct prefix of length ``l`` (level 0 has the single empty
prefix).  ``next_state[l]`` is a LongTensor ``[num_prefixes_l, K_l]``: entry ``[s, c]`` is the
state at level ``l + 1`` reached by appending code ``c`` to prefix ``s`` -- at the last level, the
row of the item in the table -- or ``-1`` when no item has that prefix.  Constraining a decoder
is then one gather per level, with no Python loop over beams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .id_table import SemanticIdTable, pack_codes


@dataclass(frozen=True, eq=False)
class SemanticIdTrie:
    """Transition tables plus the row -> item id map; immutable, so safe to share between threads."""

    next_state: tuple[torch.Tensor, ...]
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

    def step(self, level: int, state: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """States after appending ``codes`` to prefixes ``state`` (both [N]); -1 stays -1 and marks invalid."""
        table = self.next_state[level]
        valid = state >= 0
        nxt = table[state.clamp(min=0), codes.clamp(0, table.shape[1] - 1)]
        return torch.where(valid & (codes >= 0) & (codes < table.shape[1]), nxt, torch.full_like(nxt, -1))

    def allowed(self, level: int, state: torch.Tensor) -> torch.Tensor:
        """Boolean mask [N, K_level] of the codes that keep each prefix valid (all False for state -1)."""
        rows = self.next_state[level][state.clamp(min=0)] >= 0
        return rows & (state >= 0)[:, None]

    def state_of(self, codes: torch.Tensor) -> torch.Tensor:
        """State (or, for full IDs, item row) of code prefixes [N, l]; -1 where the prefix names no item."""
        state = torch.zeros(codes.shape[0], dtype=torch.long, device=codes.device)
        for level in range(codes.shape[1]):
            state = self.step(level, state, codes[:, level])
        return state

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.next_state) + self.item_ids.numel() * 8


def build_id_trie(table: SemanticIdTable, device: torch.device | str = "cpu") -> SemanticIdTrie:
    """Build the transition tables of ``table`` (vectorised; ~0.1 s for a 12k-item catalogue)."""
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
        out = np.full((num_prefixes, table.codebook_sizes[level]), -1, dtype=np.int64)
        target = prefix_index[level + 1] if level + 1 < levels else np.arange(n, dtype=np.int64)
        out[prefix_index[level], codes[:, level]] = target
        next_state.append(torch.from_numpy(out).to(device))
    return SemanticIdTrie(
        next_state=tuple(next_state),
        item_ids=torch.tensor(table.item_ids, dtype=torch.long, device=device),
        codebook_sizes=tuple(table.codebook_sizes),
    )


__all__ = ["SemanticIdTrie", "build_id_trie"]
