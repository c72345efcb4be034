"""Publishing a LoRA item encoder (an adapter directory saved by ``hf-genrec finetune-item-encoder``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError, DataFormatError
from ..item_encoders.lora_adapters import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, is_adapter_dir, read_json_object
from ..item_encoders.lora_base_models import check_hub_id
from .staging import EXCLUDED_PATTERNS


def push_item_encoder(
    adapter_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload hf_genrec item encoder (LoRA adapter)",
) -> str:
    """Upload a saved adapter directory with ``HfApi.upload_folder``; returns the commit URL.

    Refuses (before any request) a directory without adapter weights or whose adapter records a
    local path as its base model.
    """
    from huggingface_hub import HfApi

    adapter_dir = Path(adapter_dir)
    if not is_adapter_dir(adapter_dir) or not (adapter_dir / ADAPTER_WEIGHTS_FILE).is_file():
        raise DataFormatError(f"not a saved adapter: {ADAPTER_CONFIG_FILE} / {ADAPTER_WEIGHTS_FILE} missing", path=adapter_dir)
    recorded = read_json_object(adapter_dir / ADAPTER_CONFIG_FILE, "adapter config").get("base_model_name_or_path", "")
    try:
        check_hub_id(recorded)
    except ConfigError as exc:
        raise DataFormatError(f"adapter_config.json: {exc}", path=adapter_dir) from None
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(adapter_dir), repo_id=repo_id, revision=revision,
        commit_message=commit_message, ignore_patterns=[*EXCLUDED_PATTERNS, "runs/*", "*/__pycache__/*"],
    )
    return str(getattr(info, "commit_url", info))


__all__ = ["push_item_encoder"]
