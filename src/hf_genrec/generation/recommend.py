"""recommend(): histories in, ranked catalogue items out, for any model family.

The model's own processor builds the inputs (the same path training and evaluation use), and
:func:`~hf_genrec.generation.ranking.rank_batch` ranks: constrained fixed-length beam search for
generative models, exact scoring of every item for SASRec.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..errors import InvalidInputError
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


__all__ = ["recommend"]
