"""Beam search specialised to fixed-length semantic IDs.

Compared with ``generate()`` it knows that an ID has exactly L tokens: no EOS search, scores only
over the current level's codes, validity from the per-level transition tables, the encoder run
once, and the decoder cache reordered by beam index.  It returns the same top-K items and scores
as ``generate(num_beams=..., length_penalty=0.0)`` with the prefix constraint (ties aside):
transformers also applies log-softmax *before* the constraint, so scores are not renormalised over
the valid codes, and it keeps the best ``num_beams`` candidates over all beams at every step.

Level-decoding protocol (any model, see docs/ARCHITECTURE.md)::

    model.encode_for_decoding(input_ids=..., attention_mask=...) -> (enc [B, S, d], enc_mask [B, S])
    model.level_logits(level, prev_codes [N, level], enc, enc_mask, past_key_values) -> (logp [N, K_level], cache)

``prev_codes`` are codes (not token ids); the N = B * n rows are user-major (row r belongs to user
r // n).  Models that set ``level_decoding_broadcasts_encoder = True`` receive the B-row encoder
tensors at every level; others receive them repeated to N rows.  Between levels the cache is
reordered with ``model.reorder_level_cache(cache, row_index)`` if the model defines it, else with
``cache.reorder_cache(row_index)`` (transformers caches, ``T5LevelCache``); a cache with neither
is dropped and the model recomputes from ``prev_codes``.  ``row_index`` [N_new] gives, for every
new row, the row it continues (it may repeat rows: after level 0 it expands B rows to B * n).
With a broadcasting model whose cache also offers ``select(users, row_index)`` (a new cache for a
subset of users and rows, the old one untouched: ``T5LevelCache``), the last level scores each
user's best beams first and the others only where they can still reach the top ``top_k`` (exact:
a finished ID never scores above its prefix).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import torch

from ..errors import InvalidInputError
from ..semantic_ids.id_trie import SemanticIdTrie


def _reorder(model: Any, cache: Any, row_index: torch.Tensor) -> Any:
    if cache is None:
        return None
    custom = getattr(model, "reorder_level_cache", None)
    if custom is not None:
        return custom(cache, row_index)
    reorder = getattr(cache, "reorder_cache", None)
    if reorder is None:
        return None
    result = reorder(row_index)
    return cache if result is None else result


def _exclude_mask(item_rows: torch.Tensor, tables: SemanticIdTrie, exclude: Sequence[Sequence[int]]) -> torch.Tensor:
    """Boolean [B, n]: True where the beam's item is in that user's ``exclude`` list (item ids)."""
    batch = item_rows.shape[0]  # len(exclude) == batch: fast_beam_search checked it
    width = max((len(e) for e in exclude), default=0)
    if width == 0:
        return torch.zeros_like(item_rows, dtype=torch.bool)
    device = item_rows.device
    padded = torch.full((batch, width), -1, dtype=torch.long)
    for i, items in enumerate(exclude):
        if len(items):
            padded[i, : len(items)] = torch.as_tensor(list(items), dtype=torch.long)
    padded = padded.to(device)
    sorted_ids, order = tables.sorted_item_ids
    pos = torch.searchsorted(sorted_ids, padded).clamp(max=sorted_ids.numel() - 1)
    rows = torch.where(sorted_ids[pos] == padded, order[pos], torch.full_like(pos, -2))  # -2: never a beam's row
    return (item_rows[:, :, None] == rows[:, None, :]).any(-1)


MIN_USERS_PER_SHARD = 16
LAST_LEVEL_FIRST_PASS = 0.7  # share of each user's beams whose last level is scored before the others are checked


def cpu_shard_count(batch: int, device: torch.device) -> int:
    """How many threads to split a CPU batch over: one per intra-op thread, at least 16 users each.

    Users are independent, and at these sizes torch's intra-op parallelism leaves cores idle (each
    matmul or elementwise op of the decoder step is too small to split well), so separate users on
    separate threads, each with its own share of the intra-op threads, finish sooner.
    """
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), batch // MIN_USERS_PER_SHARD))


def fast_beam_search(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    id_trie: SemanticIdTrie,
    num_beams: int = 20,
    top_k: int = 10,
    exclude: Sequence[Sequence[int]] | None = None,
    num_shards: int | None = None,
    **encoder_inputs: torch.Tensor,
) -> tuple[torch.LongTensor, torch.FloatTensor]:
    """Top-``top_k`` valid IDs per user as table rows ``[B, top_k]`` and their log-probabilities ``[B, top_k]``.

    ``encoder_inputs`` are any further inputs of ``model.encode_for_decoding`` (ColaRec's slot ids).

    Rows are -1 (score -inf) where fewer than ``top_k`` valid items survive (only possible with
    ``exclude``, or a catalogue smaller than ``top_k``).  ``exclude`` (item ids per user) removes
    items from the final ``num_beams`` beams before the top ``top_k`` are taken.

    ``num_shards`` splits the batch into that many slices of users searched on parallel threads
    (default: :func:`cpu_shard_count`, 1 on accelerators).  Each user's result does not depend on
    the others in the batch, so sharding changes no ranking (scores may move in the last float bits).
    """
    if num_beams < 1 or top_k < 1:
        raise InvalidInputError(f"num_beams and top_k must be >= 1, got {num_beams} and {top_k}")
    if top_k > num_beams:
        raise InvalidInputError(f"top_k={top_k} is larger than num_beams={num_beams}: beam search keeps only num_beams IDs")
    batch = input_ids.shape[0]
    if exclude is not None and len(exclude) != batch:
        raise InvalidInputError(f"exclude has {len(exclude)} lists for a batch of {batch}")
    shards = cpu_shard_count(batch, input_ids.device) if num_shards is None else min(int(num_shards), batch)
    if shards <= 1:
        return _search(model, input_ids, attention_mask, id_trie, num_beams, top_k, exclude, encoder_inputs)
    bounds = [batch * i // shards for i in range(shards + 1)]
    caller_threads = torch.get_num_threads()
    threads = max(1, caller_threads // shards)
    inference = torch.is_inference_mode_enabled()

    def run(lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.set_num_threads(threads)  # this thread's count
        part = {
            k: v[lo:hi] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == batch else v
            for k, v in encoder_inputs.items()
        }
        with torch.inference_mode(inference):
            return _search(
                model, input_ids[lo:hi], None if attention_mask is None else attention_mask[lo:hi], id_trie,
                num_beams, top_k, None if exclude is None else exclude[lo:hi], part,
            )

    try:
        with ThreadPoolExecutor(shards) as pool:
            parts = list(pool.map(run, bounds[:-1], bounds[1:]))
    finally:
        # the count last set anywhere also becomes the default of threads started later: put the caller's back
        torch.set_num_threads(caller_threads)
    return torch.cat([rows for rows, _ in parts]), torch.cat([scores for _, scores in parts])


def _trim_padding(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, encoder_inputs: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """Drop leading and trailing columns that are padding for every user of the batch.

    Relative positions between the remaining tokens do not change, so neither does any score; a
    slice of short histories cut from a batch padded to its longest no longer attends over padding.
    """
    if attention_mask is None:
        return input_ids, attention_mask, encoder_inputs
    length = attention_mask.shape[1]
    used = attention_mask.bool().any(0).nonzero()
    if used.numel() == 0:
        return input_ids, attention_mask, encoder_inputs
    first, last = int(used[0]), int(used[-1]) + 1
    if (first, last) == (0, length):
        return input_ids, attention_mask, encoder_inputs
    cut = {
        k: v[:, first:last] if isinstance(v, torch.Tensor) and v.shape[:2] == attention_mask.shape else v
        for k, v in encoder_inputs.items()
    }
    return input_ids[:, first:last], attention_mask[:, first:last], cut


def _checked(logp: torch.Tensor, level: int, rows: int, size: int) -> torch.Tensor:
    if logp.shape != (rows, size):
        raise InvalidInputError(f"level_logits({level}) returned shape {list(logp.shape)}, expected {[rows, size]}")
    return logp.float()


def _pruned_last_level(
    model: Any,
    prev_codes: torch.Tensor,
    beam_scores: torch.Tensor,
    allowed: torch.Tensor,
    enc: torch.Tensor,
    enc_mask: torch.Tensor,
    cache: Any,
    cache_rows: torch.Tensor,
    first: int,
    top_k: int,
) -> torch.Tensor:
    """The last level's masked log-probabilities ``[B * n, K]``, -inf for beams that cannot reach the top ``top_k``.

    A finished ID scores at most its prefix (log-probabilities are <= 0).  Each user's ``first``
    best beams are scored first; a later beam whose prefix score is already below that user's
    ``top_k``-th candidate cannot enter the top ``top_k``, so only users with a later beam at or
    above it have their other beams scored.  Exact: the top ``top_k`` IDs and scores are those of
    the full search.  Needs a broadcasting model whose cache can ``select(users, row_index)``;
    ``cache`` is the previous level's, not yet reordered: beam r continues its row ``cache_rows[r]``.
    """
    batch, n = beam_scores.shape
    level = prev_codes.shape[1]
    size = allowed.shape[1]
    neg_inf = float("-inf")
    allowed = allowed.view(batch, n, size)
    codes = prev_codes.view(batch, n, level)
    rows = cache_rows.view(batch, n)
    logp = beam_scores.new_full((batch, n, size), neg_inf)
    head, _ = model.level_logits(
        level, codes[:, :first].reshape(-1, level), enc, enc_mask, cache.select(None, rows[:, :first].reshape(-1))
    )
    logp[:, :first] = _checked(head, level, batch * first, size).view(batch, first, size).masked_fill(~allowed[:, :first], neg_inf)
    candidates = (beam_scores[:, :first, None] + logp[:, :first]).reshape(batch, -1)
    if candidates.shape[1] >= top_k:
        kth = candidates.topk(top_k, dim=1).values[:, -1:]
    else:  # too few candidates to settle anything: every later beam is scored
        kth = candidates.new_full((batch, 1), neg_inf)
    rest = (beam_scores[:, first:] >= kth).any(1).nonzero().squeeze(1)
    if 2 * rest.numel() > batch:  # most users: score everyone's other beams, sparing the per-user copies
        rest = torch.arange(batch, device=prev_codes.device)
    if rest.numel():
        everyone = rest.numel() == batch
        tail, _ = model.level_logits(
            level, codes[rest, first:].reshape(-1, level), enc if everyone else enc[rest],
            enc_mask if everyone else enc_mask[rest], cache.select(None if everyone else rest, rows[rest, first:].reshape(-1)),
        )
        tail = _checked(tail, level, rest.numel() * (n - first), size).view(-1, n - first, size)
        logp[rest, first:] = tail.masked_fill(~allowed[rest, first:], neg_inf)
    return logp.view(batch * n, size)


@torch.no_grad()
def _search(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    id_trie: SemanticIdTrie,
    num_beams: int,
    top_k: int,
    exclude: Sequence[Sequence[int]] | None,
    encoder_inputs: dict[str, Any],
) -> tuple[torch.LongTensor, torch.FloatTensor]:
    device = input_ids.device
    tables = id_trie.to(device)
    input_ids, attention_mask, encoder_inputs = _trim_padding(input_ids, attention_mask, encoder_inputs)
    enc, enc_mask = model.encode_for_decoding(input_ids=input_ids, attention_mask=attention_mask, **encoder_inputs)
    batch = enc.shape[0]
    broadcast = bool(getattr(model, "level_decoding_broadcasts_encoder", False))
    neg_inf = float("-inf")
    users = torch.arange(batch, device=device)

    per_user = 1  # live beams per user
    beam_scores = torch.zeros(batch, 1, device=device)
    state = torch.zeros(batch, 1, dtype=torch.long, device=device)  # prefix state of each beam
    prev_codes = torch.zeros(batch, 0, dtype=torch.long, device=device)
    cache = None
    expanded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {1: (enc, enc_mask)}
    last = tables.num_levels - 1
    # beams per user the last level scores first (the rest only where they can still win; not with exclude lists)
    first = num_beams if exclude is not None else max(top_k, math.ceil(LAST_LEVEL_FIRST_PASS * num_beams))
    cache_rows = None  # set when the last level scores its beams in two passes

    for level in range(tables.num_levels):
        size = tables.codebook_sizes[level]
        allowed = tables.allowed(level, state.reshape(-1))
        if level == last and cache_rows is not None:
            logp = _pruned_last_level(
                model, prev_codes, beam_scores, allowed, enc, enc_mask, cache, cache_rows, first, top_k
            )
        else:
            if broadcast:
                enc_l, mask_l = enc, enc_mask
            else:
                if per_user not in expanded:
                    expanded[per_user] = (enc.repeat_interleave(per_user, 0), enc_mask.repeat_interleave(per_user, 0))
                enc_l, mask_l = expanded[per_user]
            logp, cache = model.level_logits(level, prev_codes, enc_l, mask_l, past_key_values=cache)
            logp = _checked(logp, level, batch * per_user, size).masked_fill(~allowed, neg_inf)
        total = (beam_scores.reshape(-1, 1) + logp).reshape(batch, per_user * size)
        keep = min(num_beams, per_user * size)
        beam_scores, flat = total.topk(keep, dim=1)
        parent = torch.div(flat, size, rounding_mode="floor")
        codes = flat - parent * size
        row_index = (users[:, None] * per_user + parent).reshape(-1)
        new_state = tables.step(level, state.reshape(-1)[row_index], codes.reshape(-1)).reshape(batch, keep)
        state = new_state.masked_fill(beam_scores == neg_inf, -1)
        prev_codes = torch.cat([prev_codes[row_index], codes.reshape(-1, 1)], dim=1)
        per_user = keep
        if level + 1 == last and first < keep and broadcast and hasattr(cache, "select"):
            cache_rows = row_index  # the last level selects its rows from this cache itself
        elif level + 1 < tables.num_levels:
            cache = _reorder(model, cache, row_index)

    item_rows = state  # at the last level the state is the item's table row
    if exclude is not None:
        beam_scores = beam_scores.masked_fill(_exclude_mask(item_rows, tables, exclude), neg_inf)
    take = min(top_k, per_user)
    scores, order = beam_scores.topk(take, dim=1)
    rows = item_rows.gather(1, order).masked_fill(scores == neg_inf, -1)
    if take < top_k:
        rows = torch.cat([rows, rows.new_full((batch, top_k - take), -1)], dim=1)
        scores = torch.cat([scores, scores.new_full((batch, top_k - take), neg_inf)], dim=1)
    return rows, scores


__all__ = ["cpu_shard_count", "fast_beam_search"]
