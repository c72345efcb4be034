"""Weights that fit their model exactly, checked from the safetensors headers before anything loads.

``from_pretrained`` fills tensors missing from a checkpoint with random values and only prints a
report (a ``config.json`` edited to 2 layers loads and is scored), and Trainer's resume loads a
checkpoint non-strictly.  :func:`check_weights_fit` compares the saved tensor names and shapes with
the model's own and names every missing, unexpected or misshapen tensor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointMismatchError, DataFormatError
from ..io_utils import read_json

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


def saved_tensor_shapes(folder: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor saved in ``folder`` (one safetensors file or an index of shards); headers only."""
    from safetensors import safe_open

    folder = Path(folder)
    index = folder / WEIGHTS_INDEX_FILE
    if (folder / WEIGHTS_FILE).is_file():
        files = [folder / WEIGHTS_FILE]
    elif index.is_file():
        weight_map = read_json(index, "weights index")
        weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
        if not isinstance(weight_map, dict):
            raise DataFormatError("weights index lacks its 'weight_map'", path=index)
        files = [folder / str(name) for name in dict.fromkeys(weight_map.values())]
    else:
        raise DataFormatError(f"no weights ({WEIGHTS_FILE}) in the folder", path=folder)
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.keys():
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except FileNotFoundError:
            raise DataFormatError("weights file not found", path=path) from None
        except Exception as exc:  # safetensors raises its own SafetensorError for truncated or corrupt files
            raise DataFormatError(f"unreadable safetensors file ({_first_line(exc)})", path=path) from None
    return shapes


def check_weights_fit(model: Any, folder: str | os.PathLike, config_source: str = "config.json") -> None:
    """CheckpointMismatchError naming the tensors of ``folder`` that are missing, unexpected or of another shape.

    Tensors tied to another one (``model.all_tied_weights_keys``) are not saved and may be absent.
    """
    saved = saved_tensor_shapes(folder)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = sorted(set(expected) - set(saved) - tied)
    unexpected = sorted(set(saved) - set(expected))
    misshapen = [f"{name} (saved {list(saved[name])}, model {list(expected[name])})"
                 for name in sorted(set(saved) & set(expected)) if saved[name] != expected[name]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors, e.g. {unexpected[:3]}")
    if misshapen:
        problems.append(f"{len(misshapen)} tensors of another shape, e.g. {'; '.join(misshapen[:2])}")
    if problems:
        raise CheckpointMismatchError(
            f"{folder}: the saved weights do not fit the model that {config_source} describes: {'; '.join(problems)}"
        )


def model_skeleton(model_class: type, config: Any) -> Any:
    """The model ``config`` describes, on the meta device: its tensor names and shapes, no memory, no init."""
    import torch

    with torch.device("meta"):
        return model_class(config)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["WEIGHTS_FILE", "WEIGHTS_INDEX_FILE", "check_weights_fit", "model_skeleton", "saved_tensor_shapes"]
