"""recommend(): histories in, ranked catalogue items out (constrained fixed-length beam search)."""

from __future__ import annotations

import threading
from typing import Any, Sequence

import torch

from ..errors import InvalidInputError
from .fast_beam_search import fast_beam_search
from .id_tables import SemanticIdTables, build_id_tables
from .length_order import length_order

_TABLES_LOCK = threading.Lock()


def get_id_tables(tokenizer: Any, device: torch.device | str = "cpu") -> SemanticIdTables:
    """The transition tables of ``tokenizer``'s semantic-ID table on ``device``, built once and cached.

    The cache lives on the tokenizer (keyed by table identity and device); the tables are immutable.
    """
    table = tokenizer.semantic_id_table
    key = (id(table), str(torch.device(device)))
    with _TABLES_LOCK:
        cache = tokenizer.__dict__.setdefault("_genrec_id_tables", {})
        tables = cache.get(key)
        if tables is None:
            tables = build_id_tables(table, device)
            if len(cache) > 8:  # tables of replaced ID tables
                cache.clear()
            cache[key] = tables
    return tables


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def recommend(
    model: Any,
    tokenizer: Any,
    histories: Sequence[Sequence[int]],
    k: int = 10,
    num_beams: int = 20,
    user_ids: Sequence[int | None] | None = None,
    exclude: Sequence[Sequence[int]] | None = None,
    batch_size: int = 256,
    max_history: int | None = 20,
) -> list[list[tuple[int, float]]]:
    """Top-``k`` (item id, log-probability) per history, best first.

    Raises InvalidInputError for ``k`` > ``num_beams`` or > catalogue size, an empty history or a
    bad argument, UnknownItemError for a history item outside the catalogue.  With ``exclude``
    a list can be shorter than ``k`` when the beams held excluded items.  Thread-safe: no shared
    mutable state besides an idempotent table cache; the model runs in eval mode without gradients.
    """
    num_items = len(tokenizer.semantic_id_table)
    if not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    if not isinstance(num_beams, int) or num_beams < 1:
        raise InvalidInputError(f"num_beams must be a positive integer, got {num_beams!r}")
    if k > num_beams:
        raise InvalidInputError(f"k={k} is larger than num_beams={num_beams}")
    if k > num_items:
        raise InvalidInputError(f"k={k} is larger than the catalogue ({num_items} items)")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    if user_ids is not None and len(user_ids) != len(histories):
        raise InvalidInputError(f"{len(user_ids)} user ids for {len(histories)} histories")
    if exclude is not None and len(exclude) != len(histories):
        raise InvalidInputError(f"{len(exclude)} exclude lists for {len(histories)} histories")
    use_users = user_ids is not None and getattr(tokenizer, "num_user_buckets", 0) > 0
    device = _model_device(model)
    tables = get_id_tables(tokenizer, device)
    item_ids = tables.item_ids.tolist()
    if getattr(model, "training", False):
        model.eval()
    for i, history in enumerate(histories):
        if len(history) == 0:
            raise InvalidInputError(f"history {i} is empty: at least one item is needed")
    order, _ = length_order([len(h) if max_history is None else min(len(h), max_history) for h in histories])
    results: list[list[tuple[int, float]]] = [[] for _ in histories]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = tokenizer.batch_encode_histories(
                [histories[i] for i in chunk], [user_ids[i] for i in chunk] if use_users else None, max_items=max_history
            )
            rows, scores = fast_beam_search(
                model,
                enc["input_ids"].to(device),
                enc["attention_mask"].to(device),
                tables,
                num_beams=num_beams,
                top_k=k,
                exclude=[exclude[i] for i in chunk] if exclude is not None else None,
            )
            for i, row_list, score_list in zip(chunk, rows.tolist(), scores.tolist()):
                results[i] = [(item_ids[r], float(s)) for r, s in zip(row_list, score_list) if r >= 0]
    return results


__all__ = ["recommend", "get_id_tables"]
