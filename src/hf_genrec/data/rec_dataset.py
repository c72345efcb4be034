"""Named benchmark datasets loaded from a data directory into one uniform object."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict

from ..errors import DataFormatError, UnknownDatasetError
from .catalogue import ItemCatalogue, ItemTextTemplate
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
    if protocol == LEAVE_ONE_OUT:
        items = read_jsonl(folder / "items.jsonl", {"item_id": int}, unique="item_id")
        template = ItemTextTemplate.from_fields(text_fields) if text_fields else ItemTextTemplate()
        catalogue = _catalogue(items, template, folder)
        sequences = read_sequences(folder / "sequences.txt", known_items=catalogue)
        return RecDataset(name, protocol, catalogue, sequences=sequences)
    items = read_jsonl(folder / "items.jsonl", {"item_id": int}, unique="item_id")
    catalogue = _catalogue(items, ItemTextTemplate.from_fields(text_fields or ("content",)), folder)
    return RecDataset(
        name,
        protocol,
        catalogue,
        train=read_interactions_csv(folder / "train.csv", ("user_id", "item_id", "time"), known_items=catalogue),
        valid=read_interactions_csv(folder / "valid.csv", ("user_id", "item_id"), known_items=catalogue),
        test=read_interactions_csv(folder / "test.csv", ("user_id", "item_id"), known_items=catalogue),
    )


def _protocol_of_folder(folder: Path) -> str | None:
    if (folder / "sequences.txt").exists():
        return LEAVE_ONE_OUT
    if (folder / "train.csv").exists():
        return COLAREC
    return None


def _catalogue(items: list[dict], template: ItemTextTemplate, folder: Path) -> ItemCatalogue:
    seen: set[int] = set()
    for line, item in enumerate(items, start=1):
        if item["item_id"] in seen:
            raise DataFormatError(f"item {item['item_id']} listed twice", path=folder / "items.jsonl", field="item_id")
        seen.add(item["item_id"])
    return ItemCatalogue(items, template)
