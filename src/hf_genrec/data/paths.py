"""Where benchmark data lives: an explicit argument, else $HF_GENREC_DATA, else ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "HF_GENREC_DATA"


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "../shared/data"))


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()
