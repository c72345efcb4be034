"""TIGER's input path: ``TigerProcessor`` (histories -> code tokens) and its training collator."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ...errors import InvalidInputError
from ...semantic_ids.id_table import SemanticIdTable
from ..genrec_tokenizer.tokenization_genrec import GenRecTokenizer
from ..processing_utils import HUB_KWARGS, GenRecProcessor, check_tokenizer_matches_config


class TigerProcessor(GenRecProcessor):
    """History -> TIGER encoder inputs: a user token (when the tokenizer has user buckets and a user id
    is given), then the code tokens of the last ``max_history`` items, oldest first, padded to the
    longest history of the batch."""

    def __init__(self, tokenizer: GenRecTokenizer, max_history: int = 20) -> None:
        if max_history < 1:
            raise InvalidInputError(f"max_history must be >= 1, got {max_history}")
        self.tokenizer = tokenizer
        self.max_history = int(max_history)

    @property
    def semantic_id_table(self) -> SemanticIdTable:
        return self.tokenizer.semantic_id_table

    @property
    def item_ids(self) -> list[int]:
        return self.tokenizer.semantic_id_table.item_ids

    def __call__(
        self,
        histories: Sequence[Sequence[int]],
        user_ids: Sequence[int | None] | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> dict[str, torch.Tensor]:
        users = self.check_batch(histories, user_ids)
        use_users = self.tokenizer.num_user_buckets > 0
        features = []
        for i, (items, user) in enumerate(zip(histories, users)):
            try:
                ids = self.tokenizer.encode_history(items, user if use_users else None, max_items=self.max_history)
            except InvalidInputError as exc:
                who = f" (user {user})" if user is not None else ""
                raise InvalidInputError(f"history {i}{who}: {exc}") from None
            features.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
        return dict(self.tokenizer.pad(features, padding=True, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"))

    def labels(self, items: Sequence[int]) -> torch.Tensor:
        """Code tokens of each item (one per level, no EOS): what the decoder learns to write."""
        return torch.tensor([self.tokenizer.encode_item(item) for item in items], dtype=torch.long)

    def check_model(self, config: Any) -> None:
        if self.tokenizer is not None:
            check_tokenizer_matches_config(config, self.tokenizer)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"max_history": self.max_history}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> list[str]:
        files = list(self.tokenizer.save_pretrained(save_directory))
        return files + super().save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "TigerProcessor":
        config = cls.read_config(pretrained_model_name_or_path, **kwargs)
        hub_kwargs = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
        tokenizer = GenRecTokenizer.from_pretrained(pretrained_model_name_or_path, trust_remote_code=False, **hub_kwargs)
        return cls(tokenizer, max_history=int(config["max_history"]))


@dataclass
class TigerDataCollator:
    """Training batches: the processor's inputs plus ``labels``, the code tokens of ``targets[0]``
    (no ``labels`` when no row has targets).

    (With ``Trainer`` keep ``remove_unused_columns=False`` so rows still hold ``history`` here.)
    """

    processor: TigerProcessor
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: Sequence[dict]) -> dict[str, Any]:
        if not rows:
            raise InvalidInputError("cannot collate an empty batch")
        for i, row in enumerate(rows):
            if "history" not in row:
                raise InvalidInputError(f"batch row {i} has no 'history' field")
        with_targets = [bool(row.get("targets")) for row in rows]
        if any(with_targets) and not all(with_targets):
            raise InvalidInputError("some rows of the batch have targets and some do not")
        batch = self.processor(
            [row["history"] for row in rows], [row.get("user_id") for row in rows], pad_to_multiple_of=self.pad_to_multiple_of
        )
        if all(with_targets):
            batch["labels"] = self.processor.labels([row["targets"][0] for row in rows])
        return batch


__all__ = ["TigerDataCollator", "TigerProcessor"]
