"""File I/O: atomic writes (a crash never leaves a half-written cache, table or export) and strict JSON reads."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def atomic_save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Save torch tensors as safetensors, atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


class DuplicateKeyError(ValueError):
    """A JSON object names one key twice (``json.loads`` would keep the last value without a word)."""


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key!r} in a JSON object")
        seen.add(key)
    return dict(pairs)


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses an object with a key given twice (DuplicateKeyError)."""
    return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing or unreadable file, invalid JSON or a duplicate key is a DataFormatError
    naming the file (and line)."""
    from .errors import DataFormatError  # imported here: the atomic writers stay importable on their own

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{what} not found", path=path)
    try:
        return loads_strict(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    except DuplicateKeyError as exc:
        raise DataFormatError(str(exc), path=path) from None
    except UnicodeDecodeError:
        raise DataFormatError("not UTF-8 text", path=path) from None
    except OSError as exc:
        raise DataFormatError(f"cannot read the file ({exc.strerror or exc})", path=path) from None
