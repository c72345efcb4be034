"""Folders of adapter weights (peft LoRA): the model they adapt, its family, and the adapted model.

A LoRA fine-tuning run (``init_from_checkpoint`` + ``lora_r`` in a TIGER recipe) saves only the
adapter (``adapter_config.json`` + ``adapter_model.safetensors``) beside the processor; its
``base_model_name_or_path`` names the trained checkpoint it adapts (a folder, or a Hub id once
published).  Loading wraps that model with peft's ``PeftModel``: evaluation, ``recommend()`` and
batch prediction rank through it exactly as through the merged model (the fast decoder calls
adapted layers instead of reading their base weights).  Inference loads such folders and the Hub
code publishes them (pointing ``base_model_name_or_path`` at the base model's Hub id).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointMismatchError, DataFormatError
from ..item_encoders.lora_adapters import ADAPTER_CONFIG_FILE, read_json_object
from .registry import ModelFamily, family_names, family_of_model_type


def adapter_base(model_dir: str | os.PathLike) -> str | None:
    """The model an adapter folder adapts (a local folder or a Hub id); ``None`` for a full model folder."""
    model_dir = Path(model_dir)
    path = model_dir / ADAPTER_CONFIG_FILE
    if not path.is_file() or (model_dir / "config.json").is_file():
        return None
    base = read_json_object(path, "adapter config").get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise DataFormatError("the adapter does not name its base model", path=path, field="base_model_name_or_path")
    if os.path.isabs(base) or Path(base).is_dir():
        return base
    beside = model_dir / base  # a relative folder, written relative to the adapter
    return str(beside) if beside.is_dir() else base


def family_of_model(name_or_path: str) -> ModelFamily:
    """The registered family of a saved model (folder or Hub id), from its config's ``model_type``."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(name_or_path)
    except OSError as exc:
        raise DataFormatError(f"cannot read the base model's config.json ({exc})", path=name_or_path) from None
    family = family_of_model_type(str(config.get("model_type")))
    if family is None:
        raise CheckpointMismatchError(
            f"{name_or_path}: model_type {config.get('model_type')!r} is not a recommender family of hf_genrec "
            f"({', '.join(family_names())})"
        )
    return family


def load_adapter(model: Any, adapter_dir: str | os.PathLike) -> Any:
    """``model`` wrapped with the adapter weights of ``adapter_dir`` (safetensors), for inference."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)


__all__ = ["ADAPTER_CONFIG_FILE", "adapter_base", "family_of_model", "load_adapter"]
