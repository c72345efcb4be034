"""Constraints for ``generate()``: only semantic IDs present in the catalogue can be produced.

Two interchangeable ways, which give identical scores:

* ``make_prefix_allowed_tokens_fn(tokenizer)`` -- a Python dict trie for transformers'
  ``PrefixConstrainedLogitsProcessor`` (``generate(prefix_allowed_tokens_fn=...)``); simple, but it
  runs one Python call per beam and step.
* ``SemanticIdLogitsProcessor`` -- a ``LogitsProcessor`` that walks the per-level transition tables
  with tensor gathers (no Python loop over beams); pass it in ``generate(logits_processor=[...])``.

After the last level only EOS is allowed, so ``generate()`` with extra tokens just ends.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor

from .id_trie import SemanticIdTrie, build_id_trie


def _layout(tokenizer) -> tuple[list[int], int]:
    """Where the model's ``generate()`` output puts each level's codes, and its end id.

    A tokenizer may describe a decoder vocabulary other than its own (``generation_level_offsets``,
    ColaRec); otherwise the model generates the tokenizer's own code tokens (TIGER).
    """
    offsets = getattr(tokenizer, "generation_level_offsets", None)
    if offsets is None:
        return list(tokenizer.level_offsets), int(tokenizer.eos_token_id)
    return list(offsets), int(tokenizer.generation_eos_token_id)


def make_prefix_allowed_tokens_fn(tokenizer, prompt_length: int = 1) -> Callable[[int, torch.Tensor], list[int]]:
    """A ``prefix_allowed_tokens_fn`` over the catalogue of ``tokenizer``'s semantic-ID table.

    ``prompt_length`` is the number of decoder tokens before the first code (1: the decoder start token).
    """
    table = tokenizer.semantic_id_table
    offsets, eos = _layout(tokenizer)
    levels = table.num_levels
    token_rows = (table.codes + np.asarray(offsets, dtype=np.int64)[None, :]).tolist()
    children: dict[tuple[int, ...], set[int]] = {}
    for row in token_rows:
        for depth in range(levels):
            children.setdefault(tuple(row[:depth]), set()).add(row[depth])
    trie = {prefix: sorted(tokens) for prefix, tokens in children.items()}
    only_eos = [eos]

    def prefix_allowed_tokens_fn(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        generated = tuple(input_ids[prompt_length:].tolist())
        if len(generated) >= levels:
            return only_eos
        return trie.get(generated, only_eos)

    return prefix_allowed_tokens_fn


class SemanticIdLogitsProcessor(LogitsProcessor):
    """Tensor-only constraint: scores outside the valid next codes become -inf.

    Works on any device; the tables are moved to the scores' device on first use of that device
    (the processor itself is not mutated, so one instance may serve several threads).
    """

    def __init__(
        self,
        id_trie: SemanticIdTrie,
        level_offsets: Sequence[int],
        eos_token_id: int,
        prompt_length: int = 1,
    ) -> None:
        self.id_trie = id_trie
        self.level_offsets = [int(o) for o in level_offsets]
        self.eos_token_id = int(eos_token_id)
        self.prompt_length = int(prompt_length)

    @classmethod
    def from_tokenizer(cls, tokenizer, prompt_length: int = 1, device: torch.device | str = "cpu") -> "SemanticIdLogitsProcessor":
        offsets, eos = _layout(tokenizer)
        return cls(build_id_trie(tokenizer.semantic_id_table, device), offsets, eos, prompt_length)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        tables = self.id_trie.to(scores.device)
        generated = input_ids[:, self.prompt_length :]
        level = generated.shape[1]
        out = torch.full_like(scores, float("-inf"))
        if level >= tables.num_levels:
            out[:, self.eos_token_id] = scores[:, self.eos_token_id]
            return out
        offsets = torch.tensor(self.level_offsets[:level], device=scores.device, dtype=torch.long)
        state = tables.state_of(generated - offsets)
        allowed = tables.allowed(level, state)
        start = self.level_offsets[level]
        stop = start + tables.codebook_sizes[level]
        out[:, start:stop] = scores[:, start:stop].masked_fill(~allowed, float("-inf"))
        return out


__all__ = ["make_prefix_allowed_tokens_fn", "SemanticIdLogitsProcessor"]
