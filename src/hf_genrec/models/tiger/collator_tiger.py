"""TigerDataCollator: rows {user_id, history, targets[, exclude]} -> padded encoder inputs and code labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ...errors import InvalidInputError

EVAL_FIELDS = ("user_id", "targets", "exclude")


@dataclass
class TigerDataCollator:
    """Encode histories (user token + last ``max_history`` items' codes) with dynamic padding.

    ``labels`` are the code tokens of ``targets[0]`` (one per level, no EOS).  With
    ``keep_eval_fields=True`` the batch also carries ``user_id`` / ``targets`` / ``exclude`` as plain
    Python lists for metrics; the model ignores them.  (With ``Trainer`` keep
    ``remove_unused_columns=False`` so the rows still hold ``history`` when they reach the collator.)
    """

    tokenizer: Any
    max_history: int = 20
    use_user_tokens: bool = True
    keep_eval_fields: bool = False
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: Sequence[dict]) -> dict[str, Any]:
        if not rows:
            raise InvalidInputError("cannot collate an empty batch")
        tok = self.tokenizer
        features, labels = [], []
        for i, row in enumerate(rows):
            user = row.get("user_id") if self.use_user_tokens and tok.num_user_buckets else None
            if "history" not in row:
                raise InvalidInputError(f"batch row {i} has no 'history' field")
            try:
                ids = tok.encode_history(row["history"], user, max_items=self.max_history)
            except InvalidInputError as exc:
                raise InvalidInputError(f"batch row {i} (user {row.get('user_id')}): {exc}") from None
            features.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
            targets = row.get("targets")
            if targets:
                labels.append(tok.encode_item(targets[0]))
        batch = dict(tok.pad(features, padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"))
        if labels:
            if len(labels) != len(rows):
                raise InvalidInputError("some rows of the batch have targets and some do not")
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        if self.keep_eval_fields:
            for field in EVAL_FIELDS:
                batch[field] = [list(r.get(field) or []) if field != "user_id" else r.get(field) for r in rows]
        return batch


__all__ = ["TigerDataCollator"]
