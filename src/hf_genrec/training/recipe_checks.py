"""Recipe values checked while the recipe is read, before any work.

`TrainingArguments` accepts values that train nothing (``num_train_epochs: 0``, ``learning_rate:
0``), crash deep inside torch (a negative or NaN learning rate, batch size 0, seed -1) or fail only
after hours (a misspelt ``metric_for_best_model``).  Each is a ConfigError naming the key here.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields, is_dataclass
from typing import Any, Callable

from ..errors import ConfigError
from ..evaluation.metrics import ranking_metric_names

MAX_SEED = 2**32 - 1  # numpy's seeds

# key -> (accepts the value, what the value must be)
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "learning_rate": (lambda v: v > 0, "> 0"),
    "per_device_train_batch_size": (lambda v: v >= 1, ">= 1"),
    "per_device_eval_batch_size": (lambda v: v >= 1, ">= 1"),
    "gradient_accumulation_steps": (lambda v: v >= 1, ">= 1"),
    "eval_accumulation_steps": (lambda v: v >= 1, ">= 1"),
    "max_steps": (lambda v: v == -1 or v >= 1, "-1 (train for num_train_epochs) or >= 1"),
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"in [0, {MAX_SEED}]"),
    "data_seed": (lambda v: 0 <= v <= MAX_SEED, f"in [0, {MAX_SEED}]"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "max_grad_norm": (lambda v: v >= 0, ">= 0"),
    "adam_beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "adam_beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "adam_epsilon": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "label_smoothing_factor": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "logging_steps": (lambda v: v > 0, "> 0"),
    "save_steps": (lambda v: v > 0, "> 0"),
    "eval_steps": (lambda v: v > 0, "> 0"),
    "save_total_limit": (lambda v: v >= 1, ">= 1 (or null: keep every checkpoint)"),
    "dataloader_num_workers": (lambda v: v >= 0, ">= 0"),
}


def check_recipe_values(parsed: Any, source: str | os.PathLike = "recipe") -> None:
    """ConfigError (naming ``source`` and the key) for any value a training run cannot use."""
    for part in (parsed.recipe, parsed.family_recipe, parsed.training_args):
        _check_finite(part, source)
    args = parsed.training_args
    for name, (accepts, requirement) in _RANGES.items():
        value = getattr(args, name, None)
        if value is not None and not isinstance(value, bool) and not accepts(value):
            raise ConfigError(f"{source}: {name} must be {requirement}, got {value}")
    if args.max_steps < 1 and not args.num_train_epochs > 0:
        raise ConfigError(f"{source}: num_train_epochs must be > 0 (or max_steps >= 1), got {args.num_train_epochs}")
    if not parsed.recipe.dataset:
        raise ConfigError(f"{source}: dataset must name a dataset, got {parsed.recipe.dataset!r}")
    check_selection_metric(args, source)


def check_selection_metric(args: Any, source: str | os.PathLike = "recipe") -> None:
    """``metric_for_best_model`` must be one of the ranking metrics the run's evaluation returns."""
    metric = args.metric_for_best_model
    if metric is None:
        return
    produced = ranking_metric_names(args.metric_ks)
    name = metric[len("eval_"):] if metric.startswith("eval_") else metric
    if name not in produced:
        raise ConfigError(
            f"{source}: metric_for_best_model {metric!r} is not a metric this run produces; "
            f"choose one of {produced} (metric_ks {list(args.metric_ks)}), optionally prefixed 'eval_'"
        )


def _check_finite(part: Any, source: str | os.PathLike) -> None:
    if not is_dataclass(part):
        return
    for f in fields(part):
        value = getattr(part, f.name, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{source}: {f.name} must be a finite number, got {value}")


__all__ = ["MAX_SEED", "check_recipe_values", "check_selection_metric"]
