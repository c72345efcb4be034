"""Prediction files: one JSON object a line per user (the format of batch predictions).

Input lines need ``history`` (item ids, oldest first) and may have ``user_id`` and ``exclude``;
every other field is copied through.  Output lines add ``items`` and ``scores`` (best first)::

    {"user_id": 7, "history": [12, 45, 77], "exclude": [3], "items": [101, 2045, ...], "scores": [-1.2, -2.0, ...]}

Files are written atomically, and an existing file is replaced only when asked to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..data.readers import iter_json_objects
from ..errors import DataFormatError, InvalidInputError
from ..evaluation.metrics import PAD
from ..io_utils import atomic_path


@dataclass(frozen=True)
class PredictionRequest:
    """One input line: where it was, the object as read, and the checked fields."""

    line: int
    record: dict
    history: list[int]
    user_id: int | None
    exclude: list[int]


def check_new_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """The output path, refused when a file is already there (unless ``overwrite``) or it is a folder."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory, not an output file")
    if path.exists() and not overwrite:
        raise InvalidInputError(f"{path} already exists: pass --overwrite (overwrite=True) to replace it")
    return path


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write one JSON object a line, atomically (a failure leaves any earlier file as it was); the line count."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
            count += 1
    return count


def evaluation_lines(rows: Any, items: Sequence[Sequence[int]], scores: Sequence[Sequence[float]]) -> Iterator[dict]:
    """Prediction lines of evaluation rows ``{user_id, history, exclude, ...}`` and their ranked items."""
    for row, row_items, row_scores in zip(rows, items, scores):
        kept = [(int(item), float(score)) for item, score in zip(row_items, row_scores) if item != PAD]
        yield {
            "user_id": row.get("user_id"),
            "history": [int(i) for i in row["history"]],
            "exclude": [int(i) for i in (row.get("exclude") or [])],
            "items": [item for item, _ in kept],
            "scores": [score for _, score in kept],
        }


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def read_requests(path: str | os.PathLike, known_items: set[int]) -> Iterator[PredictionRequest]:
    """The checked lines of a prediction input file (blank lines skipped); DataFormatError names line and field."""
    path = Path(path)
    for number, record in iter_json_objects(path):
        yield _request(path, number, record, known_items)


def _request(path: Path, number: int, record: dict, known_items: set[int]) -> PredictionRequest:
    if "history" not in record:
        raise DataFormatError("missing field", path=path, line=number, field="history")
    history = record["history"]
    if not _int_list(history) or not history:
        raise DataFormatError(f"expected a non-empty list of item ids, got {history!r}", path=path, line=number, field="history")
    unknown = [item for item in history if item not in known_items]
    if unknown:
        raise DataFormatError(f"item {unknown[0]} is not in the model's catalogue", path=path, line=number, field="history")
    user_id = record.get("user_id")
    if user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)):
        raise DataFormatError(f"expected an integer or null, got {user_id!r}", path=path, line=number, field="user_id")
    exclude = record.get("exclude")
    if exclude is None:
        exclude = []
    elif not _int_list(exclude):
        raise DataFormatError(f"expected a list of item ids, got {exclude!r}", path=path, line=number, field="exclude")
    return PredictionRequest(number, record, list(history), user_id, list(exclude))


__all__ = ["PredictionRequest", "check_new_output", "evaluation_lines", "read_requests", "write_jsonl"]
