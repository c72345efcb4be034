"""recommend(): histories in, ranked catalogue items out, for any model family.

The model's own processor builds the inputs (the same path training and evaluation use), and
:func:`~hf_genrec.generation.ranking.rank_batch` ranks: constrained fixed-length beam search for
generative models, exact scoring of every item for SASRec.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..data.keys import KeyMap
from ..errors import InvalidInputError, UnknownItemError
from .length_order import length_order
from .ranking import check_ranking_arguments, rank_batch, scores_items_directly


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _check_processor(processor: Any) -> None:
    if not callable(processor) or not hasattr(processor, "item_ids"):
        raise InvalidInputError(
            f"recommend() needs the model's processor (AutoProcessor.from_pretrained(model_dir) after import hf_genrec), "
            f"got {type(processor).__name__}"
        )


def recommend(
    model: Any,
    processor: Any,
    histories: Sequence[Sequence[int]],
    k: int = 10,
    num_beams: int = 20,
    user_ids: Sequence[int | None] | None = None,
    exclude: Sequence[Sequence[int]] | None = None,
    batch_size: int = 256,
) -> list[list[tuple[int, float]]]:
    """Top-``k`` (item id, score) per history, best first; the score is the log-probability of the item.

    Raises InvalidInputError for ``k`` > ``num_beams`` (beam search) or > catalogue size, an empty
    history or a bad argument, UnknownItemError for a history item outside the catalogue.  With
    ``exclude`` a list can be shorter than ``k`` when the beams held excluded items.  Thread-safe:
    no shared mutable state besides an idempotent trie cache; the model runs without gradients.
    """
    _check_processor(processor)
    item_ids = list(processor.item_ids)
    check_ranking_arguments(k, num_beams, len(item_ids), exact=scores_items_directly(model))
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    if user_ids is not None and len(user_ids) != len(histories):
        raise InvalidInputError(f"{len(user_ids)} user ids for {len(histories)} histories")
    if exclude is not None and len(exclude) != len(histories):
        raise InvalidInputError(f"{len(exclude)} exclude lists for {len(histories)} histories")
    for i, history in enumerate(histories):
        if len(history) == 0:
            raise InvalidInputError(f"history {i} is empty: at least one item is needed")
    device = _model_device(model)
    if getattr(model, "training", False):
        model.eval()
    order, _ = length_order([len(h) for h in histories])
    results: list[list[tuple[int, float]]] = [[] for _ in histories]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            inputs = processor([histories[i] for i in chunk], [user_ids[i] for i in chunk] if user_ids is not None else None)
            inputs = {name: value.to(device) if isinstance(value, torch.Tensor) else value for name, value in inputs.items()}
            rows, scores = rank_batch(
                model, processor, inputs, top_k=k, num_beams=num_beams,
                exclude=[exclude[i] for i in chunk] if exclude is not None else None,
            )
            for i, row_list, score_list in zip(chunk, rows.tolist(), scores.tolist()):
                results[i] = [(item_ids[r], float(s)) for r, s in zip(row_list, score_list) if r >= 0]
    return results


def item_key_map(processor: Any) -> KeyMap:
    """The original item keys <-> item ids of a model's processor (``processor.item_keys``), built once.

    The one conversion between a user's keys and the ids processors and ``recommend()`` speak;
    batch prediction and the CLI call it too.  InvalidInputError when the model carries no keys.
    """
    _check_processor(processor)
    keys = getattr(processor, "item_keys", None)
    if keys is None:
        raise InvalidInputError(
            "this model carries no item keys (its semantic-ID table has none: it was trained on a dataset "
            "without original keys): pass internal item ids"
        )
    cache = processor.__dict__.setdefault("_genrec_key_map", {})
    key_map = cache.get(id(keys))
    if key_map is None:
        cache.clear()
        key_map = cache[id(keys)] = KeyMap(processor.item_ids, keys)
    return key_map


def histories_to_ids(key_map: KeyMap, histories: Sequence[Sequence[Any]], what: str = "history") -> list[list[int]]:
    """Histories (or exclude lists) of original keys as item ids; UnknownItemError names the list and the key."""
    out = []
    for i, history in enumerate(histories):
        try:
            out.append(key_map.ids_of(history))
        except UnknownItemError as exc:
            raise UnknownItemError(f"{what} {i}: {exc}") from None
    return out


def recommend_by_key(
    model: Any,
    processor: Any,
    histories: Sequence[Sequence[str]],
    k: int = 10,
    num_beams: int = 20,
    user_ids: Sequence[int | None] | None = None,
    exclude: Sequence[Sequence[str]] | None = None,
    batch_size: int = 256,
) -> list[list[tuple[str, float]]]:
    """:func:`recommend` in the catalogue's original item keys: histories (and ``exclude``) of keys in,
    top-``k`` (item key, score) out.  The model must carry keys (trained on an imported dataset)."""
    key_map = item_key_map(processor)
    ranked = recommend(
        model, processor, histories_to_ids(key_map, histories), k=k, num_beams=num_beams, user_ids=user_ids,
        exclude=histories_to_ids(key_map, exclude, "exclude list") if exclude is not None else None, batch_size=batch_size,
    )
    return [[(key_map.key_of(item), score) for item, score in row] for row in ranked]


__all__ = ["histories_to_ids", "item_key_map", "recommend", "recommend_by_key"]
