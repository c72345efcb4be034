"""Ranking the catalogue for a batch of users: the one step shared by evaluation, ``recommend()`` and
batch prediction, whatever the model family.

* Generative models (TIGER, ColaRec) implement the level-decoding protocol and are ranked by
  :func:`~hf_genrec.generation.fast_beam_search.fast_beam_search` over the trie of valid IDs.
* Models that score items directly implement ``item_scores(**inputs) -> [B, num_items]`` (rows in
  the processor's ``item_ids`` order; SASRec) and are ranked exactly by a top-k over every item.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import torch

from ..errors import InvalidInputError
from ..semantic_ids.id_trie import SemanticIdTrie, build_id_trie
from .fast_beam_search import fast_beam_search

# batch fields that describe the evaluation row, not the model's input
NON_MODEL_FIELDS = ("labels", "user_id", "targets", "exclude", "decoder_input_ids")

_TRIE_LOCK = threading.Lock()


def scores_items_directly(model: Any) -> bool:
    """Whether ``model`` ranks by exact scores of every item (``item_scores``) instead of beam search."""
    return callable(getattr(model, "item_scores", None))


def get_id_trie(processor: Any, device: torch.device | str = "cpu") -> SemanticIdTrie:
    """The trie of ``processor``'s semantic-ID table on ``device``, built once and cached on the processor."""
    table = processor.semantic_id_table
    key = (id(table), str(torch.device(device)))
    with _TRIE_LOCK:
        cache = processor.__dict__.setdefault("_genrec_id_trie", {})
        trie = cache.get(key)
        if trie is None:
            trie = build_id_trie(table, device)
            if len(cache) > 8:  # tries of replaced ID tables
                cache.clear()
            cache[key] = trie
    return trie


def exclusion_mask(item_ids: torch.Tensor, exclude: Sequence[Sequence[int]], batch: int) -> torch.Tensor:
    """Boolean ``[B, num_items]``: True where the row's item is in that user's ``exclude`` list."""
    mask = torch.zeros(batch, item_ids.numel(), dtype=torch.bool, device=item_ids.device)
    sorted_ids, order = item_ids.sort()
    for user, items in enumerate(exclude):
        if len(items):
            wanted = torch.as_tensor(list(items), dtype=torch.long, device=item_ids.device)
            pos = torch.searchsorted(sorted_ids, wanted).clamp(max=sorted_ids.numel() - 1)
            found = sorted_ids[pos] == wanted
            mask[user, order[pos[found]]] = True
    return mask


@torch.no_grad()
def rank_batch(
    model: Any,
    processor: Any,
    inputs: dict[str, Any],
    top_k: int,
    num_beams: int = 20,
    exclude: Sequence[Sequence[int]] | None = None,
) -> tuple[torch.LongTensor, torch.FloatTensor]:
    """Top-``top_k`` item *rows* (positions in ``processor.item_ids``) and scores for a batch of inputs.

    Rows are -1 (score -inf) where fewer than ``top_k`` items survive ``exclude``.  Scores are
    log-probabilities of the whole ID (generative models) or of the item (exact scorers).
    """
    model_inputs = {k: v for k, v in inputs.items() if k not in NON_MODEL_FIELDS}
    if exclude is not None and not any(len(e) for e in exclude):
        exclude = None
    if scores_items_directly(model):
        scores = model.item_scores(**model_inputs).float()
        if exclude is not None:
            item_ids = torch.as_tensor(processor.item_ids, dtype=torch.long, device=scores.device)
            scores = scores.masked_fill(exclusion_mask(item_ids, exclude, scores.shape[0]), float("-inf"))
        k = min(top_k, scores.shape[1])
        values, rows = scores.topk(k, dim=1)
        rows = torch.where(torch.isfinite(values), rows, torch.full_like(rows, -1))
        if k < top_k:
            pad = top_k - k
            rows = torch.cat([rows, rows.new_full((rows.shape[0], pad), -1)], 1)
            values = torch.cat([values, values.new_full((values.shape[0], pad), float("-inf"))], 1)
        return rows, values
    device = model_inputs["input_ids"].device
    return fast_beam_search(
        model,
        id_trie=get_id_trie(processor, device),
        num_beams=num_beams,
        top_k=top_k,
        exclude=exclude,
        **model_inputs,
    )


def check_ranking_arguments(top_k: int, num_beams: int, num_items: int, exact: bool) -> None:
    """InvalidInputError for a ``top_k`` / ``num_beams`` that cannot give ``top_k`` items."""
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {top_k!r}")
    if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
        raise InvalidInputError(f"num_beams must be a positive integer, got {num_beams!r}")
    if not exact and top_k > num_beams:
        raise InvalidInputError(f"k={top_k} is larger than num_beams={num_beams}")
    if top_k > num_items:
        raise InvalidInputError(f"k={top_k} is larger than the catalogue ({num_items} items)")


__all__ = ["NON_MODEL_FIELDS", "check_ranking_arguments", "exclusion_mask", "get_id_trie", "rank_batch", "scores_items_directly"]
