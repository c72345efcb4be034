"""``model.recommend(histories)`` for models that score every item (SASRec, RPG), with nothing but transformers.

Travels with the checkpoint (imported by the modeling files): the checkpoint's own processor turns
histories into inputs and ``item_scores`` scores the whole catalogue, so the top-K are exact and
every returned id is a catalogue item.  With the package installed, ``hf_genrec.recommend`` ranks
the same way (``hf_genrec.generation.ranking``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .recommend_base import SavedProcessorMixin, check_recommend_arguments


class ExactRecommendMixin(SavedProcessorMixin):
    """Adds ``recommend`` to a model with ``item_scores(**inputs) -> [B, num_items]`` (rows in the processor's item order)."""

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[int]],
        k: int = 10,
        exclude: Sequence[Sequence[int]] | None = None,
        processor: Any = None,
        batch_size: int = 256,
    ) -> list[list[tuple[int, float]]]:
        """Top-``k`` ``(item_id, score)`` per history (item ids, oldest first), best first; ``exclude`` items never appear.

        Raises InvalidInputError for a bad argument or an empty history, UnknownItemError for a
        history item outside the catalogue.
        """
        processor = processor if processor is not None else self.load_processor()
        item_ids = list(processor.item_ids)
        check_recommend_arguments(histories, k, batch_size, exclude, len(item_ids))
        row_of = {item: row for row, item in enumerate(item_ids)}
        if self.training:
            self.eval()
        results: list[list[tuple[int, float]]] = []
        for start in range(0, len(histories), batch_size):
            chunk = list(histories[start : start + batch_size])
            inputs = {name: value.to(self.device) for name, value in processor(chunk).items()}
            scores = self.item_scores(**inputs).float()
            for user in range(len(chunk)):
                dropped = [row_of[i] for i in (exclude[start + user] if exclude is not None else ()) if i in row_of]
                if dropped:
                    scores[user, dropped] = float("-inf")
            top = scores.topk(k, dim=1)
            for values, rows in zip(top.values.tolist(), top.indices.tolist()):
                results.append([(item_ids[row], value) for row, value in zip(rows, values) if value != float("-inf")])
        return results


__all__ = ["ExactRecommendMixin"]
