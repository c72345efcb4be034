"""What leaves the training machine: a staged copy of a model folder, with no local path and no pickle.

A saved folder is the user's: pushing never edits it.  :func:`stage_model_dir` copies what is
published into a temporary folder and rewrites the files that name places on the training machine:

* ``recipe.yaml`` loses the keys whose values are absolute paths (``data_dir``, ``output_dir``,
  ``semantic_ids`` ...; the ID table ships as ``semantic_ids.json`` anyway), with a comment naming them;
* ``adapter_config.json`` (a LoRA adapter) must name its base model by Hub id: ``base_model`` sets it,
  and a local folder there is refused.

Pickles (``training_args.bin``, optimizer / RNG states, ``*.pt`` / ``*.pth`` / ``*.bin`` / ``*.pkl``),
intermediate checkpoints and ``trainer_state.json`` (training state naming local folders) are not copied.  :func:`find_local_path` then reads every staged text file
for the absolute paths of the machine that were seen (the model folder, the working directory, the
home directory): pushing stops, naming the file, rather than publish one.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..errors import ConfigError
from ..io_utils import atomic_write_json, atomic_write_text
from ..item_encoders.lora_adapters import ADAPTER_CONFIG_FILE, read_json_object
from ..item_encoders.lora_base_models import check_hub_id
from ..recipes.yaml_recipes import RECIPE_FILE, load_recipe_yaml

# never published: Trainer / torch pickles and intermediate training states
EXCLUDED_PATTERNS = (
    "checkpoint-*", "runs", ".*.tmp", "__pycache__", "*.pyc", "training_args.bin", "optimizer.pt", "scheduler.pt",
    "scaler.pt", "rng_state*.pth", "trainer_state.json", ".hf_genrec_run.json", ".hf_genrec.lock", "*.pt", "*.pth", "*.bin", "*.pkl", "*.pickle", "*.ckpt",
)
TEXT_SUFFIXES = {".json", ".yaml", ".yml", ".md", ".txt", ".py", ".jsonl", ".csv"}


def is_local_path(value: Any) -> bool:
    """An absolute path (``/...``, ``~/...``, ``C:\\...``): it names a place on the machine that wrote it."""
    return isinstance(value, str) and bool(value) and (
        os.path.isabs(value) or value.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", value) is not None
    )


def publishable_recipe(text: str) -> str:
    """The recipe text without the keys whose values are absolute local paths (unchanged when there are none)."""
    values = load_recipe_yaml(text)
    if not isinstance(values, dict):
        return text
    removed = [key for key, value in values.items() if is_local_path(value)
               or (isinstance(value, list) and any(is_local_path(v) for v in value))]
    if not removed:
        return text
    kept = {key: value for key, value in values.items() if key not in removed}
    note = f"# removed before publishing (absolute paths of the training machine): {', '.join(removed)}\n"
    return note + yaml.safe_dump(kept, sort_keys=False)


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED_PATTERNS)


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if _excluded(entry.name) or entry.is_symlink():
            continue
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        else:
            shutil.copy2(entry, target / entry.name)


def stage_model_dir(model_dir: str | os.PathLike, staging: str | os.PathLike, base_model: str | None = None) -> Path:
    """Copy the publishable files of ``model_dir`` into ``staging`` and rewrite the ones that name local paths."""
    model_dir, staging = Path(model_dir), Path(staging)
    _copy_tree(model_dir, staging)
    recipe = staging / RECIPE_FILE
    if recipe.is_file():
        atomic_write_text(recipe, publishable_recipe(recipe.read_text(encoding="utf-8")))
    adapter = staging / ADAPTER_CONFIG_FILE
    if adapter.is_file():
        _point_adapter_at_hub(adapter, model_dir / ADAPTER_CONFIG_FILE, base_model)
    return staging


def _point_adapter_at_hub(path: Path, source: Path, base_model: str | None) -> None:
    config = read_json_object(path, "adapter config")
    if base_model is not None:
        config["base_model_name_or_path"] = check_hub_id(base_model)
    else:
        try:
            check_hub_id(str(config.get("base_model_name_or_path", "")))
        except ConfigError:
            raise ConfigError(
                f"{source}: the adapter's base model is {config.get('base_model_name_or_path')!r}, not a Hub id; pass the "
                f"Hub id it is published as (hf-genrec push --base-model ORG/NAME, push_model_dir(base_model=...))"
            ) from None
    atomic_write_json(path, config, indent=2)


def local_path_markers(*paths: str | os.PathLike) -> list[str]:
    """Absolute paths whose appearance in a published file would leak the training machine's layout."""
    markers = {str(Path(p).resolve()) for p in paths}
    markers |= {str(Path(p).resolve().parent) for p in paths}
    markers |= {os.getcwd(), str(Path.home())}
    return sorted(m for m in markers if len(Path(m).parts) > 1)


def find_local_path(staging: str | os.PathLike, markers: Iterable[str]) -> tuple[str, str] | None:
    """``(file, path)`` of the first staged text file that contains one of ``markers``, else ``None``."""
    staging = Path(staging)
    patterns = [(m, re.compile(re.escape(m) + r"(?![\w.-])")) for m in markers]
    for path in sorted(staging.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for marker, pattern in patterns:
            if pattern.search(text):
                return str(path.relative_to(staging)), marker
    return None


__all__ = ["EXCLUDED_PATTERNS", "find_local_path", "is_local_path", "local_path_markers", "publishable_recipe", "stage_model_dir"]
