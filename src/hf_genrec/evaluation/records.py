"""Evaluation records of a model folder, kept apart so no record replaces another.

``eval_results.json`` is the training's own test record (written once by ``hf-genrec train``; the
model card's model-index comes from it alone).  ``hf-genrec evaluate`` keeps its records in
``evaluations.json``: a list with one record per (dataset, split, protocol, catalogue), a new
evaluation replacing only the record of the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataFormatError
from ..io_utils import atomic_write_json, read_json

EVAL_RESULTS_FILE = "eval_results.json"
EVALUATIONS_FILE = "evaluations.json"
RECORD_KEY = ("dataset", "split", "protocol", "catalogue")


def catalogue_summary(item_ids: Sequence[int]) -> dict[str, Any]:
    """How many items were ranked, and a digest of which (two records of one catalogue have equal summaries)."""
    ids = sorted(int(i) for i in item_ids)
    digest = hashlib.sha256(json.dumps(ids, separators=(",", ":")).encode("utf-8")).hexdigest()[:16]
    return {"items": len(ids), "digest": digest}


def read_evaluation_records(model_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``evaluations.json`` (``[]`` when there is none); a malformed file is a DataFormatError."""
    path = Path(model_dir) / EVALUATIONS_FILE
    if not path.exists():
        return []
    records = read_json(path, "evaluation records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataFormatError("evaluation records must be a JSON list of objects", path=path)
    return records


def add_evaluation_record(model_dir: str | os.PathLike, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Store ``record`` in ``evaluations.json``, replacing only a record of the same (dataset, split, protocol, catalogue)."""
    key = _key(record)
    records = [r for r in read_evaluation_records(model_dir) if _key(r) != key] + [record]
    atomic_write_json(Path(model_dir) / EVALUATIONS_FILE, records, indent=2)
    return records


def _key(record: dict[str, Any]) -> str:
    return json.dumps([record.get(name) for name in RECORD_KEY], sort_keys=True, default=str)


__all__ = ["EVAL_RESULTS_FILE", "EVALUATIONS_FILE", "RECORD_KEY", "add_evaluation_record", "catalogue_summary", "read_evaluation_records"]
