"""Evaluation protocols: which rows train, validate and test, with no target in its own input.

Every row has ``user_id``, ``history`` (oldest first, at most ``max_history`` items),
``targets`` (one or more items) and ``exclude`` (items removed from the ranking).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from datasets import Dataset, DatasetDict, Features, Sequence, Value

ROW_FEATURES = Features(
    {
        "user_id": Value("int64"),
        "history": Sequence(Value("int64")),
        "targets": Sequence(Value("int64")),
        "exclude": Sequence(Value("int64")),
    }
)

LEAVE_ONE_OUT = "leave-one-out"
COLAREC = "colarec"

PROTOCOL_DESCRIPTIONS = {
    LEAVE_ONE_OUT: (
        "leave-one-out: last item = test target, second-to-last = validation target, history = the "
        "previous {max_history} items; full-catalogue ranking"
    ),
    COLAREC: (
        "colarec: per-user random split of interactions (ColaRec's files); history = the user's training "
        "items; targets = all held-out items of the split; training items excluded from the ranking; "
        "full-catalogue ranking otherwise"
    ),
}


def describe_protocol(protocol: str, max_history: int = 20) -> str:
    return PROTOCOL_DESCRIPTIONS[protocol].format(max_history=max_history)


def _rows_to_dataset(rows: dict[str, list]) -> Dataset:
    return Dataset.from_dict(rows, features=ROW_FEATURES)


def _empty_rows() -> dict[str, list]:
    return {"user_id": [], "history": [], "targets": [], "exclude": []}


def leave_one_out_splits(sequences: dict[int, list[int]], max_history: int = 20) -> DatasetDict:
    """TIGER / P5 / S3-Rec protocol; training rows are every prefix of ``items[:-2]``."""
    train, valid, test = _empty_rows(), _empty_rows(), _empty_rows()
    for user, items in sequences.items():
        if len(items) < 3:
            continue  # too short to hold a training, a validation and a test item
        for end in range(1, len(items) - 2):
            _append(train, user, items[max(0, end - max_history) : end], [items[end]], [])
        _append(valid, user, items[:-2][-max_history:], [items[-2]], [])
        _append(test, user, items[:-1][-max_history:], [items[-1]], [])
    return DatasetDict(train=_rows_to_dataset(train), validation=_rows_to_dataset(valid), test=_rows_to_dataset(test))


def colarec_splits(
    train: Iterable[tuple[int, int, int]],
    valid: Iterable[tuple[int, int]],
    test: Iterable[tuple[int, int]],
    max_history: int = 20,
) -> DatasetDict:
    """ColaRec protocol; a training row predicts one training item from the user's *other* training items."""
    train_items = user_train_items(train)
    held_out = {"validation": _group(valid), "test": _group(test)}
    splits = {name: _empty_rows() for name in ("train", "validation", "test")}
    for user, items in train_items.items():
        for position, target in enumerate(items):
            others = items[:position] + items[position + 1 :]
            _append(splits["train"], user, others[-max_history:], [target], [])
        for name, groups in held_out.items():
            if user in groups:
                _append(splits[name], user, items[-max_history:], groups[user], items)
    return DatasetDict({name: _rows_to_dataset(rows) for name, rows in splits.items()})


def user_train_items(train: Iterable[tuple[int, int, int]]) -> dict[int, list[int]]:
    """Each user's training items in time order (file order breaks ties)."""
    by_user: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for order, (user, item, time) in enumerate(train):
        by_user[user].append((time, order, item))
    return {user: [item for _, _, item in sorted(events)] for user, events in by_user.items()}


def _group(pairs: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for user, item in pairs:
        groups[user].append(item)
    return groups


def _append(rows: dict[str, list], user: int, history: list[int], targets: list[int], exclude: list[int]) -> None:
    rows["user_id"].append(user)
    rows["history"].append(list(history))
    rows["targets"].append(list(targets))
    rows["exclude"].append(list(exclude))


def leave_one_out_report(sequences: dict[int, list[int]]) -> dict[str, dict[str, int]]:
    """Per scored split: users scored, and users left out for having fewer than 3 items."""
    short = sum(1 for items in sequences.values() if len(items) < 3)
    counts = {"users_scored": len(sequences) - short, "users_with_fewer_than_3_items": short}
    return {"validation": dict(counts), "test": dict(counts)}


def colarec_report(
    train: Iterable[tuple[int, int, int]], valid: Iterable[tuple[int, int]], test: Iterable[tuple[int, int]]
) -> dict[str, dict[str, int]]:
    """Per scored split: users scored, held-out users without training items (no input: not scored), and
    targets that are also the user's training items (excluded from the ranking, so never hit)."""
    train_items = {user: set(items) for user, items in user_train_items(train).items()}
    report = {}
    for name, pairs in (("validation", valid), ("test", test)):
        groups = _group(pairs)
        report[name] = {
            "users_scored": sum(1 for user in groups if user in train_items),
            "users_without_training_items": sum(1 for user in groups if user not in train_items),
            "targets": sum(len(items) for user, items in groups.items() if user in train_items),
            "targets_also_in_training_items": sum(
                1 for user, items in groups.items() if user in train_items for item in items if item in train_items[user]
            ),
        }
    return report
