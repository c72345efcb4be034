"""``model.recommend(histories)``: valid top-K catalogue items with nothing but transformers.

This module travels with every TIGER / ColaRec checkpoint (it is imported by the modeling files,
so ``save_pretrained`` copies it), as do the processor and the semantic-ID modules it uses: a user
with only transformers and ``trust_remote_code=True`` loads the model and calls
``model.recommend(histories, k=10)``.  The checkpoint's own processor turns histories into inputs
(the same input path as training and evaluation) and ``generate()`` is constrained to the
catalogue's IDs by :class:`SemanticIdLogitsProcessor` over the checkpoint's ``semantic_ids.json``, so
every returned id is an item of the catalogue.

With the package installed, ``hf_genrec.recommend(model, processor, ...)`` ranks the same items
(ties aside) several times faster with the fixed-length beam search of ``hf_genrec.generation``;
that module is not part of the checkpoint's code, so this one uses ``generate()``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import LogitsProcessorList

from ..semantic_ids.constraints import SemanticIdLogitsProcessor
from ..semantic_ids.id_trie import build_id_trie
from .recommend_base import SavedProcessorMixin, check_recommend_arguments


class GenerateRecommendMixin(SavedProcessorMixin):
    """Adds ``recommend`` (and ``load_processor``) to a generative model (before ``PreTrainedModel`` in the bases).

    The model class sets ``processor_class`` (its family's processor; loaded from the folder or
    repo the model came from) and its config ``generation_level_offsets`` (where ``generate()``
    writes each level's codes).
    """

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[int]],
        k: int = 10,
        num_beams: int = 20,
        user_ids: Sequence[int | None] | None = None,
        exclude: Sequence[Sequence[int]] | None = None,
        processor: Any = None,
        batch_size: int = 64,
    ) -> list[list[tuple[int, float]]]:
        """Top-``k`` ``(item_id, log_prob)`` per history (item ids, oldest first), best first.

        ``exclude`` (item ids per history) drops items from the ``num_beams`` beams before the top
        ``k`` are taken, so a list can be shorter than ``k``.  Raises InvalidInputError for a bad
        argument or an empty history, UnknownItemError for a history item outside the catalogue.
        """
        processor = processor if processor is not None else self.load_processor()
        table = processor.semantic_id_table
        check_recommend_arguments(histories, k, batch_size, exclude, table.num_items, num_beams=num_beams, user_ids=user_ids)
        levels = table.num_levels
        offsets = torch.as_tensor(list(self.config.generation_level_offsets), dtype=torch.long, device=self.device)
        trie = build_id_trie(table, self.device)
        constraint = SemanticIdLogitsProcessor(trie, offsets.tolist(), int(self.config.eos_token_id), prompt_length=1)
        if self.training:
            self.eval()
        results: list[list[tuple[int, float]]] = []
        for start in range(0, len(histories), batch_size):
            chunk = list(histories[start : start + batch_size])
            users = list(user_ids[start : start + batch_size]) if user_ids is not None else None
            inputs = {name: value.to(self.device) for name, value in processor(chunk, users).items()}
            out = self.generate(
                **inputs, num_beams=num_beams, num_return_sequences=num_beams, do_sample=False, length_penalty=0.0,
                max_new_tokens=levels, logits_processor=LogitsProcessorList([constraint]),
                output_scores=True, return_dict_in_generate=True,
            )
            rows = trie.state_of(out.sequences[:, 1 : 1 + levels] - offsets).view(len(chunk), num_beams)
            scores = out.sequences_scores.view(len(chunk), num_beams)
            item_ids = table.item_ids
            for user, (row_list, score_list) in enumerate(zip(rows.tolist(), scores.tolist())):
                dropped = set(exclude[start + user]) if exclude is not None else set()
                ranked = [(int(item_ids[row]), float(score)) for row, score in zip(row_list, score_list)
                          if row >= 0 and item_ids[row] not in dropped]
                results.append(ranked[:k])
        return results


__all__ = ["GenerateRecommendMixin"]
