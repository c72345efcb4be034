"""A user's own interactions and item catalogue (tables with their own keys) -> the package's dataset form.

Interactions are rows of (user key, item key, timestamp); each user's items are ordered by
timestamp, ties by file order.  Users and items with fewer than ``min_count`` interactions are
dropped repeatedly until none is left (k-core, as in the Amazon benchmarks).  Users are numbered
from 1 in order of first appearance in the file, items from 1 in order of first appearance in the
ordered sequences (user by user), so a table exported from a benchmark folder numbers back to the
same ids.  Both key maps are kept.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import DataFormatError
from .keys import key_text
from .raw_amazon import k_core
from .tables import Table, as_table

RESERVED_ITEM_FIELDS = ("item_id", "item_key")


@dataclass(frozen=True)
class ImportColumns:
    """Column names of the two tables; ``timestamp=None`` keeps each user's rows in file order."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = "timestamp"
    item_key: str = "item_id"  # the items table's key column
    text: tuple[str, ...] | None = None  # item text columns (default: every other text column of the items table)


@dataclass
class ImportedInteractions:
    """What :func:`import_interactions` made: everything a leave-one-out ``RecDataset`` is built from."""

    sequences: dict[int, list[int]]
    items: list[dict[str, Any]]  # {"item_id", "item_key", text fields...}, in item id order
    user_keys: list[str]  # user_keys[u - 1] is the key of internal user u
    text_fields: tuple[str, ...]
    summary: dict[str, Any] = field(default_factory=dict)


def import_interactions(
    interactions: Any,
    items: Any = None,
    columns: ImportColumns = ImportColumns(),
    min_count: int = 5,
) -> ImportedInteractions:
    """Read, check, order, filter and number; ``interactions`` / ``items`` are files or in-memory tables
    (see :func:`~hf_genrec.data.tables.as_table`)."""
    if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
        raise DataFormatError(f"min_count must be a positive integer, got {min_count!r}")
    table = as_table(interactions, "interactions")
    table.require([columns.user, columns.item] + ([columns.timestamp] if columns.timestamp else []))
    events = _user_events(table, columns)
    kept = k_core(events, min_count)
    if not kept:
        raise DataFormatError(
            f"no interactions left: no user keeps {min_count} interactions on items that keep {min_count} "
            f"(lower min_count)", path=table.source
        )
    item_rows, text_fields = _item_rows(items, columns) if items is not None else ({}, ())

    user_keys = list(kept)
    item_ids: dict[str, int] = {}
    sequences = {}
    for number, (user, user_events) in enumerate(kept.items(), start=1):
        sequences[number] = [item_ids.setdefault(key, len(item_ids) + 1) for _, _, key in sorted(user_events)]
    catalogue = []
    for key, internal in item_ids.items():
        catalogue.append({"item_id": internal, "item_key": key, **item_rows.get(key, {})})
    interactions_in = sum(len(e) for e in events.values())
    interactions_out = sum(len(s) for s in sequences.values())
    summary = {
        "users": len(sequences),
        "items": len(item_ids),
        "interactions": interactions_out,
        "rows_read": len(table),
        "min_count": min_count,
        "dropped_users": len(events) - len(sequences),
        "dropped_interactions": interactions_in - interactions_out,
        "items_without_metadata": sum(1 for key in item_ids if key not in item_rows) if items is not None else None,
        "catalogue_items_without_interactions": sum(1 for key in item_rows if key not in item_ids),
        "text_fields": list(text_fields),
        "ordered_by": columns.timestamp or "file order",
    }
    return ImportedInteractions(sequences, catalogue, user_keys, tuple(text_fields), summary)


def _user_events(table: Table, columns: ImportColumns) -> dict[str, list[tuple[Any, int, str]]]:
    """``{user key: [(timestamp, row, item key), ...]}`` in order of first appearance, every value checked."""
    users = table.columns[columns.user]
    items = table.columns[columns.item]
    times = table.columns[columns.timestamp] if columns.timestamp else None
    events: dict[str, list[tuple[Any, int, str]]] = {}
    for row in range(len(table)):
        user = _key(table, row, columns.user, users[row])
        item = _key(table, row, columns.item, items[row])
        time = _timestamp(table, row, columns.timestamp, times[row]) if times is not None else 0
        events.setdefault(user, []).append((time, row, item))
    return events


def _key(table: Table, row: int, column: str, value: Any) -> str:
    key = key_text(value)
    if key is None:
        if value is None or (isinstance(value, str) and not value.strip()) or _is_nan(value):
            raise table.error(row, "empty value", column)
        raise table.error(row, f"expected a key (text or an integer), got {value!r}", column)
    return key


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _timestamp(table: Table, row: int, column: str, value: Any) -> float | int:
    """A number; numeric text and ISO 8601 dates are read as such (naive dates as UTC)."""
    if value is None or _is_nan(value):
        raise table.error(row, "empty value", column)
    if isinstance(value, bool):
        raise table.error(row, f"expected a number, got {value!r}", column)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise table.error(row, f"expected a finite number, got {value!r}", column)
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            if not math.isfinite(number):
                raise table.error(row, f"expected a finite number, got {value!r}", column)
            return number
        try:
            return _timestamp(table, row, column, dt.datetime.fromisoformat(text))
        except ValueError:
            pass
    raise table.error(row, f"expected a number or an ISO 8601 date, got {value!r}", column)


def _item_rows(items: Any, columns: ImportColumns) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """``{item key: {text field: value}}`` of the items table, and the text fields in column order."""
    table = as_table(items, "items")
    table.require([columns.item_key] + list(columns.text or ()))
    if columns.text is not None:
        text_fields = tuple(columns.text)
    else:
        text_fields = tuple(name for name in table.names if name != columns.item_key and _is_text(table.columns[name]))
    reserved = [name for name in text_fields if name in RESERVED_ITEM_FIELDS]
    if reserved:
        raise DataFormatError(
            f"text columns {reserved} clash with the dataset's own item fields {list(RESERVED_ITEM_FIELDS)}: "
            f"pass the text columns explicitly or rename those columns", path=table.source
        )
    keys = table.columns[columns.item_key]
    first_row: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for row in range(len(table)):
        key = _key(table, row, columns.item_key, keys[row])
        if key in first_row:
            where = f"line {table.lines[first_row[key]]}" if table.lines is not None else f"row {first_row[key]}"
            raise table.error(row, f"item {key!r} already appears on {where}", columns.item_key)
        first_row[key] = row
        rows[key] = {name: _json_value(table.columns[name][row]) for name in text_fields}
    return rows, text_fields


def _is_text(values: Sequence[Any]) -> bool:
    """A column holds text when some value is a non-numeric string or a list (category paths)."""
    for value in values:
        if isinstance(value, (list, tuple)):
            return True
        if isinstance(value, str) and value.strip():
            try:
                float(value)
            except ValueError:
                return True
    return False


def _json_value(value: Any) -> Any:
    """Values as items.jsonl can hold them: text, numbers, lists; anything else as its text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if hasattr(value, "tolist"):  # numpy values and arrays
        return _json_value(value.tolist())
    return str(value)


__all__ = ["ImportColumns", "ImportedInteractions", "import_interactions"]
