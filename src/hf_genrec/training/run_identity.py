"""What makes two training runs the same run: the recipe (paths aside) and digests of what it reads.

Resuming, or training again into a folder, is allowed only for the same run (see
``hf_genrec.output_folders``): the same recipe values, the same dataset content, the same
semantic-ID table and item-tokenizer recipe, wherever those files now live.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..data import RecDataset
from ..output_folders import RunMarker, file_digest
from ..semantic_ids.id_table import SemanticIdTable

# recipe keys that say where things are, not what they are (their content is digested instead)
LOCATION_KEYS = ("output_dir", "overwrite_output_dir", "data_dir", "semantic_ids", "semantic_id_recipe")


def run_marker(parsed: Any, dataset: RecDataset) -> RunMarker:
    """The :class:`RunMarker` of a parsed recipe trained on ``dataset``."""
    recipe = parsed.recipe
    return RunMarker({
        "recipe": {key: value for key, value in parsed.values.items() if key not in LOCATION_KEYS},
        "dataset": dataset_digest(dataset),
        "semantic_id_table": _digest(SemanticIdTable.load(recipe.semantic_ids).to_dict()) if recipe.semantic_ids else None,
        "item_tokenizer_recipe": file_digest(recipe.semantic_id_recipe, "item-tokenizer recipe") if recipe.semantic_id_recipe else None,
    })


def dataset_digest(dataset: RecDataset) -> str:
    """A digest of what a run reads from a dataset: item ids and texts, and every interaction."""
    return _digest({
        "protocol": dataset.protocol,
        "items": list(zip(dataset.catalogue.item_ids, dataset.catalogue.texts())),
        "sequences": sorted(dataset.sequences.items()),
        "train": dataset.train,
        "valid": dataset.valid,
        "test": dataset.test,
    })


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


__all__ = ["LOCATION_KEYS", "dataset_digest", "run_marker"]
