"""Strict readers of the benchmark file formats: every problem names its file, line and field."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any, Container, Iterator

from ..errors import DataFormatError
from ..io_utils import DuplicateKeyError, loads_strict


def _open_lines(path: Path, strip: bool = True) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) of a non-empty text file, skipping blank lines.

    Lines are stripped of surrounding whitespace, or with ``strip=False`` only of the line break
    (a TSV row may end in an empty field).
    """
    if not path.exists():
        raise DataFormatError("file not found", path=path)
    if not path.is_file():
        raise DataFormatError("not a regular file", path=path)
    if path.stat().st_size == 0:
        raise DataFormatError("file is empty", path=path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataFormatError(f"cannot read the file ({exc.strerror or exc})", path=path) from None
    with handle:  # decoded line by line, so a bad byte is reported on its own line
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path, line=number) from None
                if line.strip():
                    yield number, line.strip() if strip else line.rstrip("\r\n")
        except OSError as exc:
            raise DataFormatError(f"cannot read the file ({exc.strerror or exc})", path=path, line=number + 1) from None


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a JSON-lines file; DataFormatError names the line
    (invalid JSON, a key given twice, a line that is not an object)."""
    path = Path(path)
    for number, line in _open_lines(path):
        try:
            row = loads_strict(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"invalid JSON ({exc.msg})", path=path, line=number) from None
        except DuplicateKeyError as exc:
            raise DataFormatError(str(exc), path=path, line=number) from None
        if not isinstance(row, dict):
            raise DataFormatError("expected a JSON object", path=path, line=number)
        yield number, row


_INTEGER = re.compile(r"[-+]?[0-9]+")  # int() would also read "1_0" as 10 and non-ASCII digits
MAX_ID = 2**63 - 1  # ids are stored as int64


def check_id(value: int, path: Path, line: int, field: str) -> int:
    """An id must be non-negative and fit in int64 (the datasets' id columns)."""
    if value < 0:
        raise DataFormatError(f"ids must be non-negative, got {value}", path=path, line=line, field=field)
    if value > MAX_ID:
        raise DataFormatError(f"ids must be at most {MAX_ID} (int64), got {value}", path=path, line=line, field=field)
    return value


def _parse_int(token: str, path: Path, line: int, field: str) -> int:
    if not _INTEGER.fullmatch(token):
        raise DataFormatError(f"expected an integer, got {token!r}", path=path, line=line, field=field)
    return check_id(int(token), path, line, field)


def _check_known(items: list[int], known_items: Container[int] | None, path: Path, line: int) -> None:
    if known_items is None:
        return
    for item in items:
        if item not in known_items:
            raise DataFormatError(f"item {item} is not in the item catalogue (items.jsonl)", path=path, line=line, field="item_id")


def read_sequences(path: str | Path, known_items: Container[int] | None = None) -> dict[int, list[int]]:
    """`user_id item_id item_id ...` per line, items oldest first; items checked against ``known_items``."""
    path = Path(path)
    sequences: dict[int, list[int]] = {}
    for number, line in _open_lines(path):
        tokens = line.split()
        if len(tokens) < 2:
            raise DataFormatError("a line needs a user id and at least one item id", path=path, line=number)
        user = _parse_int(tokens[0], path, number, "user_id")
        if user in sequences:
            raise DataFormatError(f"user {user} appears twice", path=path, line=number, field="user_id")
        items = [_parse_int(t, path, number, "item_id") for t in tokens[1:]]
        _check_known(items, known_items, path, number)
        sequences[user] = items
    if not sequences:
        raise DataFormatError("no sequences in file", path=path)
    return sequences


def read_jsonl(
    path: str | Path, required: dict[str, type | tuple[type, ...]], unique: str | None = None
) -> list[dict[str, Any]]:
    """One JSON object a line; ``required`` maps field names to accepted types; ``unique`` names a key field."""
    path = Path(path)
    rows = []
    first_line: dict[Any, int] = {}
    for number, row in iter_json_objects(path):
        for field, kind in required.items():
            if field not in row:
                raise DataFormatError("missing field", path=path, line=number, field=field)
            if not isinstance(row[field], kind) or (kind is int and isinstance(row[field], bool)):
                raise DataFormatError(
                    f"expected {getattr(kind, '__name__', kind)}, got {type(row[field]).__name__}",
                    path=path, line=number, field=field,
                )
            if kind is int:  # required integer fields are ids, as in sequences.txt and the CSV files
                check_id(row[field], path, number, field)
        if unique is not None:
            key = row.get(unique)
            if key in first_line:
                raise DataFormatError(
                    f"{unique} {key!r} already appears on line {first_line[key]}", path=path, line=number, field=unique
                )
            first_line[key] = number
        rows.append(row)
    if not rows:
        raise DataFormatError("no JSON objects in file (only blank lines)", path=path)
    return rows


def read_interactions_csv(
    path: str | Path, columns: tuple[str, ...], known_items: Container[int] | None = None
) -> list[tuple[int, ...]]:
    """A headed CSV of integer columns (e.g. user_id,item_id[,time]), returned in file order."""
    path = Path(path)
    lines = _open_lines(path)
    try:
        _, header_line = next(lines)
    except StopIteration:
        raise DataFormatError("file is empty", path=path) from None
    header = [h.strip() for h in next(csv.reader([header_line]))]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFormatError(f"header lacks columns {missing} (found {header})", path=path, line=1)
    index = [header.index(c) for c in columns]
    rows = []
    for number, line in lines:
        fields = next(csv.reader([line]))
        if len(fields) != len(header):
            raise DataFormatError(f"expected {len(header)} fields, got {len(fields)}", path=path, line=number)
        row = tuple(_parse_int(fields[i].strip(), path, number, c) for i, c in zip(index, columns))
        if "item_id" in columns:
            _check_known([row[columns.index("item_id")]], known_items, path, number)
        rows.append(row)
    if not rows:
        raise DataFormatError("no data rows after the header", path=path)
    return rows
