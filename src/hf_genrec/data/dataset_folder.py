"""The files of a dataset folder beyond the interactions: its description (``dataset.json``: text
fields, provenance) and the user-key map (``users.jsonl``); and writing a whole folder at once.

A folder is written into a temporary sibling and renamed into place, so a crash never leaves half
a dataset, and an existing folder is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from ..io_utils import atomic_write_json, atomic_write_text, read_json
from .keys import KeyMap
from .protocols import LEAVE_ONE_OUT
from .readers import read_jsonl

DATASET_INFO_FILE = "dataset.json"
USERS_FILE = "users.jsonl"
DATASET_FORMAT = "hf_genrec.dataset/1"


def read_dataset_info(folder: Path) -> dict[str, Any]:
    """``dataset.json`` of a folder (``{}`` when absent: the benchmark folders have none)."""
    path = folder / DATASET_INFO_FILE
    if not path.exists():
        return {}
    info = read_json(path, "dataset description")
    if not isinstance(info, dict):
        raise DataFormatError("a dataset description is a JSON object", path=path)
    fields = info.get("text_fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise DataFormatError("expected a list of column names", path=path, field="text_fields")
    return info


def read_user_keys(folder: Path, users: set[int] | None = None) -> KeyMap | None:
    """``users.jsonl`` (``{"user_id": int, "user_key": str}`` a line) as a KeyMap, ``None`` when absent."""
    path = folder / USERS_FILE
    if not path.exists():
        return None
    rows = read_jsonl(path, {"user_id": int, "user_key": str}, unique="user_id")
    if users is not None:
        unknown = sorted({row["user_id"] for row in rows} ^ users)
        if unknown:
            raise DataFormatError(f"user ids {unknown[:5]} are in only one of {USERS_FILE} and the interactions", path=path)
    return KeyMap([row["user_id"] for row in rows], [row["user_key"] for row in rows], kind="user", source=path)


def write_dataset_folder(dataset: Any, folder: str | os.PathLike) -> Path:
    """Write a ``RecDataset`` as a folder ``load_rec_dataset`` reads; refuses a folder that already exists."""
    folder = refuse_existing(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        if dataset.protocol == LEAVE_ONE_OUT:
            _write_lines(staging / "sequences.txt", (" ".join(map(str, [u, *items])) for u, items in dataset.sequences.items()))
        else:
            _write_lines(staging / "train.csv", ["user_id,item_id,time", *(f"{u},{i},{t}" for u, i, t in dataset.train)])
            for name, rows in (("valid.csv", dataset.valid), ("test.csv", dataset.test)):
                _write_lines(staging / name, ["user_id,item_id", *(f"{u},{i}" for u, i in rows)])
        _write_lines(staging / "items.jsonl", (json.dumps(item, ensure_ascii=False) for item in dataset.catalogue.items))
        if dataset.user_keys is not None:
            users = sorted(dataset.user_keys.keys, key=dataset.user_keys.id_of)
            _write_lines(
                staging / USERS_FILE,
                (json.dumps({"user_id": dataset.user_keys.id_of(k), "user_key": k}, ensure_ascii=False) for k in users),
            )
        info = {"format": DATASET_FORMAT, "protocol": dataset.protocol, **dataset.info}
        if dataset.text_fields is not None:
            info["text_fields"] = list(dataset.text_fields)
        atomic_write_json(staging / DATASET_INFO_FILE, info, indent=2)
        refuse_existing(folder)  # appeared meanwhile
        os.rename(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


def refuse_existing(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path; DataFormatError when it already exists (a dataset folder is never replaced)."""
    folder = Path(folder)
    if folder.exists():
        raise DataFormatError("already exists: choose a new output folder (nothing was overwritten)", path=folder)
    return folder


def _write_lines(path: Path, lines: Any) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


__all__ = ["DATASET_INFO_FILE", "USERS_FILE", "read_dataset_info", "read_user_keys", "refuse_existing", "write_dataset_folder"]
