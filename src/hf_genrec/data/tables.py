"""Tables a user brings (interactions, item catalogue) read into columns, every value located by file and line.

CSV / TSV and JSON lines are read with the standard library: a row with a wrong number of fields
or a key such as ``007`` must never be silently realigned or turned into the number 7, which is
what a pandas-based reader does.  Parquet is read through ``datasets``.  In memory a
``datasets.Dataset``, a pandas DataFrame or a dict of equal-length lists is accepted; rows are
then located as ``row N`` (0-based, as the object indexes them).
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataFormatError
from .readers import _open_lines, iter_json_objects

TEXT_FORMATS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSON_LINES = (".jsonl", ".json", ".ndjson")
PARQUET = (".parquet", ".pq")


@dataclass
class Table:
    """Named columns of equal length, and where each row came from (for error messages)."""

    columns: dict[str, list[Any]]
    source: object  # the file, or a description of the in-memory object
    lines: list[int] | None = None  # file line of each row (text formats); None: rows are located as "row N"

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def error(self, row: int, message: str, field: str | None = None) -> DataFormatError:
        """A DataFormatError naming this table's file, the row's line (or row number) and ``field``."""
        if self.lines is not None:
            return DataFormatError(message, path=self.source, line=self.lines[row], field=field)
        return DataFormatError(f"row {row}: {message}" if field is None else f"row {row}, field {field!r}: {message}", path=self.source)

    def require(self, names: Sequence[str]) -> None:
        """DataFormatError listing the columns of ``names`` the table lacks."""
        missing = [name for name in names if name not in self.columns]
        if missing:
            where = {"line": 1} if self.lines is not None else {}
            raise DataFormatError(f"lacks columns {missing} (found {self.names})", path=self.source, **where)


def read_table(path: str | os.PathLike) -> Table:
    """A CSV, TSV, JSON-lines or Parquet file (chosen by its extension) as a :class:`Table`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_FORMATS:
        return _read_delimited(path, TEXT_FORMATS[suffix])
    if suffix in JSON_LINES:
        return _read_json_lines(path)
    if suffix in PARQUET:
        return _read_parquet(path)
    raise DataFormatError(
        f"unknown table format {suffix or '(no extension)'!r}: use .csv, .tsv, .jsonl or .parquet", path=path
    )


def as_table(data: Any, what: str = "table") -> Table:
    """A file path, a ``datasets.Dataset``, a pandas DataFrame or a dict of equal-length lists as a :class:`Table`."""
    if isinstance(data, (str, os.PathLike)):
        return read_table(data)
    if hasattr(data, "to_dict") and hasattr(data, "column_names"):  # datasets.Dataset
        columns = data.to_dict()
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas.DataFrame
        columns = {str(name): values for name, values in data.to_dict("list").items()}
    elif isinstance(data, dict):
        columns = {str(name): list(values) for name, values in data.items()}
    else:
        raise DataFormatError(
            f"{what}: expected a file path, a datasets.Dataset, a pandas DataFrame or a dict of lists, got {type(data).__name__}"
        )
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataFormatError(f"{what}: columns of different lengths {lengths}")
    table = Table(columns, source=f"<{what}: {type(data).__name__}>")
    if not columns or len(table) == 0:
        raise DataFormatError(f"{what}: no rows")
    return table


def _read_delimited(path: Path, delimiter: str) -> Table:
    pulled: list[int] = []  # file lines the csv reader consumed for the record it reads now

    def feed():
        for number, line in _open_lines(path, strip=False):  # checks existence, emptiness, UTF-8 by line
            pulled.append(number)
            yield line

    records = csv.reader(feed(), delimiter=delimiter)
    header = _next_record(records, pulled, path)
    if header is None:
        raise DataFormatError("file is empty", path=path)
    header = [name.strip().lstrip("\ufeff") for name in header]  # a byte-order mark from spreadsheet exports
    if len(set(header)) != len(header):
        duplicated = sorted({name for name in header if header.count(name) > 1})
        raise DataFormatError(f"header repeats columns {duplicated}", path=path, line=pulled[0])
    columns: dict[str, list[Any]] = {name: [] for name in header}
    numbers: list[int] = []
    while (fields := _next_record(records, pulled, path)) is not None:
        if len(fields) != len(header):
            raise DataFormatError(f"expected {len(header)} fields, got {len(fields)}", path=path, line=pulled[0])
        numbers.append(pulled[0])
        for name, value in zip(header, fields):
            columns[name].append(value if value.strip() else None)
    if not numbers:
        raise DataFormatError("no data rows after the header", path=path)
    return Table(columns, path, numbers)


def _next_record(records: Any, pulled: list[int], path: Path) -> list[str] | None:
    """The next record of a csv reader (``None`` at the end); ``pulled[0]`` is then its first line."""
    pulled.clear()
    try:
        return next(records)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise DataFormatError(f"malformed row ({exc})", path=path, line=pulled[0] if pulled else None) from None


def _read_json_lines(path: Path) -> Table:
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, row in iter_json_objects(path):
        rows.append(row)
        numbers.append(number)
    if not rows:
        raise DataFormatError("no JSON objects in file (only blank lines)", path=path)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {name: [row.get(name) for row in rows] for name in names}
    return Table(columns, path, numbers)


def _read_parquet(path: Path) -> Table:
    import datasets

    if not path.is_file():
        raise DataFormatError("file not found" if not path.exists() else "not a regular file", path=path)
    if path.stat().st_size == 0:
        raise DataFormatError("file is empty", path=path)
    with tempfile.TemporaryDirectory(prefix="hf_genrec_parquet_") as cache:
        was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            dataset = datasets.Dataset.from_parquet(str(path), cache_dir=cache, keep_in_memory=True)
        except Exception as exc:  # pyarrow's own error types: say what it found, on one line
            raise DataFormatError(f"not a readable Parquet file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", path=path) from None
        finally:
            if was_enabled:
                datasets.enable_progress_bars()
        columns = dataset.to_dict()
    if not columns or not next(iter(columns.values())):
        raise DataFormatError("no rows", path=path)
    return Table(columns, path)


__all__ = ["Table", "as_table", "read_table"]
