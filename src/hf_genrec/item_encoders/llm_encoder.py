"""Decoder-only LLMs (or any plain transformers checkpoint) as item text encoders.

A plain checkpoint (``config.json`` + weights, no sentence-transformers ``modules.json``) becomes a
``SentenceTransformer`` of two library modules: ``Transformer`` (``AutoModel`` + ``AutoTokenizer``)
and ``Pooling`` (``"mean"`` or ``"lasttoken"``).  It then encodes, trains (LoRA, the ST trainer),
saves and caches exactly like the bundled MiniLM.

Padding: always on the right.  A causal LM numbers positions from 0 in every row only when the pads
come last, and causal attention never lets a real token see the pads after it, so an item's
embedding does not depend on what else is in its batch.  Both poolings read the attention mask
(``lasttoken`` takes the last unmasked position), so right padding is also what they expect.
LLM tokenizers often have no pad token: the EOS token is reused (it is masked out anyway).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..recipes.item_encoder_recipe import POOLING_MODES
DEFAULT_POOLING = "mean"
ST_MODULES_FILE = "modules.json"


def is_plain_transformers_dir(path: str | os.PathLike) -> bool:
    """A local transformers checkpoint that is not a sentence-transformers model nor a PEFT adapter."""
    path = Path(str(path)).expanduser()
    return (
        path.is_dir()
        and (path / "config.json").is_file()
        and not (path / ST_MODULES_FILE).is_file()
        and not (path / "adapter_config.json").is_file()
    )


def refuse_checkpoint_code(path: str | os.PathLike) -> None:
    """ConfigError for a local checkpoint whose model type exists only in its own code (``auto_map``).

    Loading never runs a checkpoint's code (``trust_remote_code=False`` everywhere); this names the
    reason instead of transformers' several-line advice to pass ``trust_remote_code=True``.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config_path = Path(str(path)).expanduser() / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not a local checkpoint, or transformers reports the file itself
    if isinstance(config, dict) and config.get("auto_map") and config.get("model_type") not in CONFIG_MAPPING:
        raise ConfigError(
            f"{config_path}: model_type {config.get('model_type')!r} is defined only by the checkpoint's own code "
            "(auto_map); hf_genrec never runs a checkpoint's code"
        )


def check_pooling(pooling: str) -> str:
    if pooling not in POOLING_MODES:
        raise ConfigError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
    return pooling


def saved_pooling_mode(model_dir: str | os.PathLike) -> str | None:
    """The pooling mode a saved sentence-transformers directory records (its Pooling module's config)."""
    model_dir = Path(model_dir)
    try:
        modules = json.loads((model_dir / ST_MODULES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for module in modules:
        if str(module.get("type", "")).endswith(".Pooling"):
            try:
                config = json.loads((model_dir / module["path"] / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError, KeyError):
                return None
            mode = config.get("pooling_mode")
            if isinstance(mode, str):
                return mode
            # older configs: one boolean per mode ("pooling_mode_mean_tokens": true, ...)
            for key, value in config.items():
                if key.startswith("pooling_mode_") and value is True:
                    return {"pooling_mode_mean_tokens": "mean", "pooling_mode_lasttoken": "lasttoken"}.get(key, key)
    return None


def load_llm_encoder(
    model_name_or_path: str | os.PathLike,
    pooling: str = DEFAULT_POOLING,
    max_seq_length: int | None = 128,
    device: str | None = None,
    local_files_only: bool | None = None,
) -> Any:
    """A ``SentenceTransformer`` around a plain transformers checkpoint (e.g. a decoder-only LLM).

    Args:
        model_name_or_path: local checkpoint directory or Hub id (``AutoModel``-loadable).
        pooling: ``"mean"`` over real tokens or ``"lasttoken"`` (the last real token).
        max_seq_length: tokens kept per item text.
        device: ``"cpu"``, ``"cuda"``...; ``None`` lets sentence-transformers pick.
        local_files_only: default ``True`` for a local directory, else huggingface_hub's setting.

    Raises:
        ConfigError: unknown pooling, unloadable checkpoint, or a tokenizer without pad/EOS token.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    check_pooling(pooling)
    name = str(model_name_or_path)
    refuse_checkpoint_code(name)
    if local_files_only is None:
        local_files_only = Path(name).expanduser().is_dir()
    hub_kwargs = {"local_files_only": bool(local_files_only)}
    try:  # a checkpoint's own code never runs
        transformer = Transformer(
            name,
            max_seq_length=max_seq_length,
            model_kwargs={**hub_kwargs, "trust_remote_code": False},
            processor_kwargs={**hub_kwargs, "trust_remote_code": False},
            config_kwargs={**hub_kwargs, "trust_remote_code": False},
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"transformers encoder {name!r} could not be loaded: {exc}") from None
    tokenizer = transformer.tokenizer
    if tokenizer is None:
        raise ConfigError(f"transformers encoder {name!r} has no text tokenizer")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError(f"tokenizer of {name!r} has neither a pad nor an EOS token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    dimension = transformer.get_embedding_dimension()
    return SentenceTransformer(modules=[transformer, Pooling(dimension, pooling_mode=pooling)], device=device, trust_remote_code=False)


__all__ = [
    "DEFAULT_POOLING",
    "refuse_checkpoint_code",
    "POOLING_MODES",
    "check_pooling",
    "is_plain_transformers_dir",
    "load_llm_encoder",
    "saved_pooling_mode",
]
