"""The input path of the item-sequence families (SASRec, RPG): histories -> left-padded item rows + 1,
training examples that learn every position of a sequence, and their collator."""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from datasets import Dataset

from ..errors import CheckpointMismatchError, DataFormatError, InvalidInputError, UnknownItemError
from ..semantic_ids.id_table import checked_item_keys
from .causal_transformer import IGNORE_INDEX
from .processing_utils import PROCESSOR_FILE, GenRecProcessor, pad_rows


def _item_key(item: object) -> int | None:
    """The integer an item id stands for, or ``None`` (floats, strings, bools are not item ids)."""
    if isinstance(item, bool):
        return None
    try:
        return operator.index(item)
    except TypeError:
        return None


class ItemSequenceProcessor(GenRecProcessor):
    """History -> the rows + 1 of the last ``max_history`` items, left-padded with 0.

    ``item_ids`` is the catalogue in the model's item-row order (row ``r`` is ``item_ids[r]``).
    User ids are accepted and ignored: these models read the items alone.
    """

    def __init__(self, item_ids: Sequence[int], max_history: int = 50, item_keys: Sequence[str] | None = None) -> None:
        if max_history < 1:
            raise InvalidInputError(f"max_history must be >= 1, got {max_history}")
        self._item_ids = [int(i) for i in item_ids]
        self._token_of = {item: row + 1 for row, item in enumerate(self._item_ids)}
        if len(self._token_of) != len(self._item_ids):
            raise CheckpointMismatchError("the catalogue lists an item id twice")
        self.max_history = int(max_history)
        self._item_keys = checked_item_keys(item_keys, len(self._item_ids))

    @property
    def item_ids(self) -> list[int]:
        return self._item_ids

    @property
    def item_keys(self) -> list[str] | None:
        """The items' original keys (imported datasets), saved in ``processor_config.json``; else the ID table's."""
        return self._item_keys if self._item_keys is not None else super().item_keys

    def encode_items(self, items: Sequence[int]) -> list[int]:
        """Row + 1 of every item (UnknownItemError names the first item outside the catalogue)."""
        tokens = []
        for item in items:
            token = self._token_of.get(_item_key(item))
            if token is None:
                raise UnknownItemError(f"item {item!r} is not in the model's catalogue of {len(self._item_ids)} items")
            tokens.append(token)
        return tokens

    def __call__(self, histories: Sequence[Sequence[int]], user_ids: Sequence[int | None] | None = None) -> dict[str, torch.Tensor]:
        self.check_batch(histories, user_ids)
        rows = []
        for i, history in enumerate(histories):
            if len(history) == 0:
                raise InvalidInputError(f"history {i}: empty history: at least one item is needed to recommend")
            rows.append(self.encode_items(list(history)[-self.max_history :]))
        return left_pad(rows)

    def check_model(self, config: Any) -> None:
        problems = []
        if config.num_items != len(self._item_ids):
            problems.append(f"num_items {config.num_items} (config.json) disagrees with the processor's {len(self._item_ids)} items")
        if config.max_position_embeddings < self.max_history:
            problems.append(
                f"max_position_embeddings {config.max_position_embeddings} (config.json) is shorter than the processor's "
                f"max_history {self.max_history}"
            )
        if problems:
            raise CheckpointMismatchError("; ".join(problems))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        keys = {"item_keys": self._item_keys} if self._item_keys is not None else {}
        return {"max_history": self.max_history, "item_ids": self._item_ids, **keys}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "ItemSequenceProcessor":
        config = cls.read_config(pretrained_model_name_or_path, **kwargs)
        try:
            return cls(config["item_ids"], max_history=int(config["max_history"]), item_keys=config.get("item_keys"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"invalid {cls.__name__} config ({exc})", path=PROCESSOR_FILE) from None


def left_pad(rows: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
    """Left-pad token rows with 0: the most recent item is the last position of every row."""
    reversed_rows = pad_rows([list(reversed(r)) for r in rows], 0)
    input_ids = reversed_rows.flip(1)
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}


def sequence_examples(sequences: Mapping[int, Sequence[int]], max_history: int) -> Dataset:
    """Training rows from users' training sequences: every position learns the item after it.

    A sequence of up to ``max_history + 1`` items is one row (inputs = all but the last item,
    targets = all but the first).  A longer sequence adds one row per later item, reading the
    ``max_history`` items before it and learning that item only (``supervised = 1``).
    """
    rows: dict[str, list] = {"user_id": [], "history": [], "targets": [], "supervised": []}

    def add(user: int, window: Sequence[int], supervised: int) -> None:
        rows["user_id"].append(int(user))
        rows["history"].append(list(window[:-1]))
        rows["targets"].append(list(window[1:]))
        rows["supervised"].append(supervised)

    for user, items in sequences.items():
        items = list(items)
        if len(items) < 2:
            continue
        add(user, items[: max_history + 1], 0)
        for end in range(max_history + 2, len(items) + 1):
            add(user, items[end - max_history - 1 : end], 1)
    return Dataset.from_dict(rows)


@dataclass
class ItemSequenceCollator:
    """Training batches: the processor's inputs plus ``labels`` aligned with them (row + 1 of the next
    item at every supervised position, -100 elsewhere).  ``supervised = k > 0`` learns only the last k."""

    processor: ItemSequenceProcessor

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        if not rows:
            raise InvalidInputError("cannot collate an empty batch")
        batch = self.processor([row["history"] for row in rows])
        width = batch["input_ids"].shape[1]
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for r, row in enumerate(rows):
            targets = self.processor.encode_items(row["targets"])[-width:]
            k = int(row.get("supervised") or 0) or len(targets)
            labels[r, width - k :] = torch.as_tensor(targets[-k:], dtype=torch.long)
        batch["labels"] = labels
        return batch


__all__ = ["ItemSequenceCollator", "ItemSequenceProcessor", "left_pad", "sequence_examples"]
