"""Named benchmark datasets loaded from a data directory into one uniform object."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from ..errors import DataFormatError, UnknownDatasetError
from .catalogue import ItemCatalogue, ItemTextTemplate
from .dataset_folder import read_dataset_info, read_user_keys, write_dataset_folder
from .keys import KeyMap
from .paths import resolve_data_dir
from .protocols import (
    COLAREC,
    LEAVE_ONE_OUT,
    colarec_report,
    colarec_splits,
    describe_protocol,
    leave_one_out_report,
    leave_one_out_splits,
    user_train_items,
)

logger = logging.getLogger(__name__)
from .readers import read_interactions_csv, read_jsonl, read_sequences
from .table_import import ImportColumns, import_interactions

KNOWN_DATASETS = {"amazon-beauty": LEAVE_ONE_OUT, "amazon-phones": COLAREC}


@dataclass
class RecDataset:
    """A catalogue plus its interactions, under the protocol its files define."""

    name: str
    protocol: str
    catalogue: ItemCatalogue
    sequences: dict[int, list[int]] = field(default_factory=dict)  # leave-one-out: full time-ordered sequences
    train: list[tuple[int, int, int]] = field(default_factory=list)  # colarec: (user, item, time)
    valid: list[tuple[int, int]] = field(default_factory=list)
    test: list[tuple[int, int]] = field(default_factory=list)
    user_keys: KeyMap | None = None  # original user keys <-> user ids (imported datasets)
    text_fields: tuple[str, ...] | None = None  # item fields rendered as text, when not the default template
    info: dict[str, Any] = field(default_factory=dict)  # provenance, saved in dataset.json

    @property
    def item_keys(self) -> KeyMap | None:
        """Original item keys <-> item ids (imported datasets), else ``None``."""
        return self.catalogue.key_map

    @classmethod
    def from_interactions(
        cls,
        interactions: Any,
        items: Any = None,
        *,
        name: str = "imported",
        user_column: str = "user_id",
        item_column: str = "item_id",
        timestamp_column: str | None = "timestamp",
        item_key_column: str = "item_id",
        text_columns: tuple[str, ...] | list[str] | None = None,
        min_count: int = 5,
    ) -> "RecDataset":
        """A leave-one-out dataset from a user's own tables, keeping their keys.

        ``interactions`` (user, item, timestamp rows) and ``items`` (one row per item key, text
        columns) are file paths (CSV, TSV, JSON lines, Parquet), ``datasets.Dataset`` objects,
        pandas DataFrames or dicts of lists.  Each user's items are ordered by timestamp (ties by
        row order; ``timestamp_column=None``: row order), then users and items with fewer than
        ``min_count`` interactions are dropped until none is left.  ``save(folder)`` writes a
        folder every command reads (``--data-dir PARENT --dataset NAME``).
        """
        columns = ImportColumns(
            user=user_column, item=item_column, timestamp=timestamp_column, item_key=item_key_column,
            text=tuple(text_columns) if text_columns is not None else None,
        )
        imported = import_interactions(interactions, items, columns, min_count)
        template = ItemTextTemplate.from_fields(imported.text_fields)
        return cls(
            name,
            LEAVE_ONE_OUT,
            ItemCatalogue(imported.items, template),
            sequences=imported.sequences,
            user_keys=KeyMap(range(1, len(imported.user_keys) + 1), imported.user_keys, kind="user"),
            text_fields=imported.text_fields,
            info={"import": imported.summary},
        )

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the dataset as a folder (a new one: an existing folder is never replaced)."""
        return write_dataset_folder(self, folder)

    def splits(self, max_history: int = 20) -> DatasetDict:
        """Training, validation and test rows; a split without a single user is a DataFormatError."""
        if self.protocol == LEAVE_ONE_OUT:
            splits = leave_one_out_splits(self.sequences, max_history)
            why = "every user has fewer than the 3 items leave-one-out needs (training, validation and test)"
        else:
            splits = colarec_splits(self.train, self.valid, self.test, max_history)
            why = "no user of it has training items (train.csv) to recommend from"
        empty = [name for name, rows in splits.items() if len(rows) == 0]
        if empty:
            raise DataFormatError(f"dataset {self.name!r} has no user to score in its {empty[0]} split: {why}")
        return splits

    def split_report(self) -> dict[str, dict[str, int]]:
        """Per scored split, the counts of what the protocol scores and what it cannot (logged as warnings).

        Leave-one-out leaves out users with fewer than 3 items; the ColaRec protocol cannot score a
        held-out user without training items, nor hit a target that is also a training item of its
        user (training items are excluded from the ranking).
        """
        if self.protocol == LEAVE_ONE_OUT:
            report = leave_one_out_report(self.sequences)
        else:
            report = colarec_report(self.train, self.valid, self.test)
        for split, counts in report.items():
            left_out = {k: v for k, v in counts.items() if k not in ("users_scored", "targets") and v}
            if left_out:
                logger.warning("dataset %s, %s split: %s (scored users: %d)", self.name, split,
                               ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in left_out.items()), counts["users_scored"])
        return report

    def describe_protocol(self, max_history: int = 20) -> str:
        return describe_protocol(self.protocol, max_history)

    def train_sequences(self) -> dict[int, list[int]]:
        """Each user's training items in time order; validation and test targets never appear."""
        if self.protocol == LEAVE_ONE_OUT:
            return {user: items[:-2] for user, items in self.sequences.items() if len(items) >= 3}
        return user_train_items(self.train)

    def train_interactions(self) -> list[tuple[int, int]]:
        return [(user, item) for user, items in self.train_sequences().items() for item in items]

    def stats(self) -> dict:
        if self.protocol == LEAVE_ONE_OUT:
            users = len(self.sequences)
            interactions = sum(len(items) for items in self.sequences.values())
        else:
            users = len({u for u, _, _ in self.train} | {u for u, _ in self.valid} | {u for u, _ in self.test})
            interactions = len(self.train) + len(self.valid) + len(self.test)
        return {
            "dataset": self.name,
            "protocol": self.protocol,
            "users": users,
            "items": len(self.catalogue),
            "interactions": interactions,
            "mean_history": interactions / max(users, 1),
        }


def load_rec_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    text_fields: tuple[str, ...] | None = None,
) -> RecDataset:
    """Load ``data_dir/name``: ``sequences.txt`` (leave-one-out) or ``train/valid/test.csv`` (ColaRec)."""
    folder = resolve_data_dir(data_dir) / name
    protocol = KNOWN_DATASETS.get(name) or _protocol_of_folder(folder)
    if protocol is None and folder.is_dir():
        raise DataFormatError("the dataset folder holds neither sequences.txt nor train.csv (next to items.jsonl)", path=folder)
    if protocol is None:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}: known names are {sorted(KNOWN_DATASETS)}, or a folder under "
            f"{folder.parent} holding sequences.txt or train.csv next to items.jsonl"
        )
    if not folder.is_dir():
        raise DataFormatError(f"dataset folder for {name!r} not found (set --data-dir or $HF_GENREC_DATA)", path=folder)
    info = read_dataset_info(folder)
    saved_fields = tuple(info["text_fields"]) if info.get("text_fields") is not None else None
    items = read_jsonl(folder / "items.jsonl", {"item_id": int}, unique="item_id")
    _check_item_keys(items, folder / "items.jsonl")
    if protocol == LEAVE_ONE_OUT:
        fields = text_fields or saved_fields
        template = ItemTextTemplate() if fields is None else ItemTextTemplate.from_fields(fields)
        catalogue = _catalogue(items, template, folder)
        sequences = read_sequences(folder / "sequences.txt", known_items=catalogue)
        return RecDataset(
            name, protocol, catalogue, sequences=sequences, user_keys=read_user_keys(folder, set(sequences)),
            text_fields=saved_fields, info={k: v for k, v in info.items() if k not in ("format", "protocol", "text_fields")},
        )
    catalogue = _catalogue(items, ItemTextTemplate.from_fields(text_fields or saved_fields or ("content",)), folder)
    dataset = RecDataset(
        name,
        protocol,
        catalogue,
        train=read_interactions_csv(folder / "train.csv", ("user_id", "item_id", "time"), known_items=catalogue),
        valid=read_interactions_csv(folder / "valid.csv", ("user_id", "item_id"), known_items=catalogue),
        test=read_interactions_csv(folder / "test.csv", ("user_id", "item_id"), known_items=catalogue),
        text_fields=saved_fields,
        info={k: v for k, v in info.items() if k not in ("format", "protocol", "text_fields")},
    )
    dataset.user_keys = read_user_keys(folder, {u for u, _, _ in dataset.train} | {u for u, _ in dataset.valid} | {u for u, _ in dataset.test})
    return dataset


def _protocol_of_folder(folder: Path) -> str | None:
    if (folder / "sequences.txt").exists():
        return LEAVE_ONE_OUT
    if (folder / "train.csv").exists():
        return COLAREC
    return None


def _check_item_keys(items: list[dict], path: Path) -> None:
    """``item_key`` (imported datasets) on every item or on none, non-empty text, never twice."""
    keyed = [("item_key" in item) for item in items]
    if not any(keyed):
        return
    first: dict[str, int] = {}
    for line, item in enumerate(items, start=1):
        key = item.get("item_key")
        if not isinstance(key, str) or not key:
            raise DataFormatError(f"item {item['item_id']}: expected a non-empty string, got {key!r}", path=path, field="item_key")
        if key in first:
            raise DataFormatError(f"item key {key!r} names items {first[key]} and {item['item_id']}", path=path, field="item_key")
        first[key] = item["item_id"]


def _catalogue(items: list[dict], template: ItemTextTemplate, folder: Path) -> ItemCatalogue:
    seen: set[int] = set()
    for line, item in enumerate(items, start=1):
        if item["item_id"] in seen:
            raise DataFormatError(f"item {item['item_id']} listed twice", path=folder / "items.jsonl", field="item_id")
        seen.add(item["item_id"])
    return ItemCatalogue(items, template)
