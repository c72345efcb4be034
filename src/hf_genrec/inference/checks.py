"""Checks made before a saved model is scored or queried, so a bad argument costs nothing and a record is true.

* arguments (``--batch-size 0``, ``--max-users -5``...) are refused before anything loads;
* a saved ``recipe.yaml``'s values are read with their types checked;
* the model's catalogue must be the dataset's: a model ranking another catalogue would not give the
  dataset's full-catalogue metrics.  ``allow_mismatch`` scores it anyway, and the record says so.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Sequence

from ..data import RecDataset
from ..errors import CheckpointMismatchError, DataFormatError, InvalidInputError
from ..evaluation.records import catalogue_summary
from ..recipes.training_arguments import DEFAULT_METRIC_KS, derived_num_beams
from ..recipes.yaml_recipes import RECIPE_FILE


def check_positive_arguments(**values: Any) -> None:
    """InvalidInputError naming the first argument that is not a positive integer (``None``: not given)."""
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise InvalidInputError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")


def saved_num_beams(recipe: dict, model_dir: str | os.PathLike, metric_ks: list[int] | None = None) -> int:
    """The recipe's ``generation_num_beams``, or the width derived from ``metric_ks`` (default: the recipe's, as
    its training derived it) when the recipe sets none."""
    if recipe.get("generation_num_beams") is not None:
        return saved_recipe_value(recipe, "generation_num_beams", 20, model_dir)
    return derived_num_beams(metric_ks or saved_recipe_value(recipe, "metric_ks", list(DEFAULT_METRIC_KS), model_dir))


def saved_recipe_value(recipe: dict, key: str, default: Any, model_dir: str | os.PathLike) -> Any:
    """``recipe[key]`` (or ``default``) checked to be of ``default``'s kind: a positive int or a list of them, a name."""
    value = recipe.get(key, default)
    where = Path(model_dir) / RECIPE_FILE
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        expected = "a positive integer"
    elif isinstance(default, list):
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        expected = "a non-empty list of positive integers"
    else:
        ok = value is None or (isinstance(value, str) and bool(value.strip()))
        expected = "a name"
    if not ok:
        raise DataFormatError(f"expected {expected}, got {value!r}", path=where, field=key)
    return value


def catalogue_record(model_dir: str | os.PathLike, item_ids: Sequence[int], dataset: RecDataset,
                     allow_mismatch: bool = False) -> dict[str, Any]:
    """The ``catalogue`` field of an evaluation record; CheckpointMismatchError when the model's catalogue
    is not the dataset's (unless ``allow_mismatch``: the field then counts the difference)."""
    model_items, data_items = set(int(i) for i in item_ids), set(dataset.catalogue.item_ids)
    summary = catalogue_summary(item_ids)
    if model_items == data_items:
        return summary
    unknown, outside = sorted(data_items - model_items), sorted(model_items - data_items)
    difference = "; ".join(part for part in (
        f"{len(unknown)} dataset items unknown to the model, e.g. {unknown[:5]}" if unknown else "",
        f"{len(outside)} model items not in the dataset, e.g. {outside[:5]}" if outside else "",
    ) if part)
    if not allow_mismatch:
        raise CheckpointMismatchError(
            f"{model_dir}: the model ranks a catalogue of {len(model_items)} items, dataset {dataset.name!r} has "
            f"{len(data_items)} ({difference}), so its metrics would not be the dataset's full-catalogue ranking; "
            "pass --allow-catalogue-mismatch to score it anyway (the record then says so)"
        )
    return {**summary, "dataset_items": len(data_items), "matches_dataset": False,
            "dataset_items_unknown_to_model": len(unknown), "model_items_not_in_dataset": len(outside)}


def describe_ranking(protocol: str, catalogue: dict[str, Any]) -> str:
    """The protocol description, saying so when the model did not rank the dataset's own catalogue."""
    if catalogue.get("matches_dataset") is not False:
        return protocol
    instead = f"ranking over the model's catalogue of {catalogue['items']} items (the dataset has {catalogue['dataset_items']})"
    return protocol.replace("full-catalogue ranking", instead) if "full-catalogue ranking" in protocol else f"{protocol}; {instead}"


__all__ = ["catalogue_record", "check_positive_arguments", "describe_ranking", "saved_num_beams", "saved_recipe_value"]
