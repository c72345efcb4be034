"""The publisher behind ``model.push_to_hub(repo_id)`` for hf_genrec models (registered by ``import hf_genrec``).

It publishes the folder the model was loaded from (processor, ID table, ``eval_results.json``,
``recipe.yaml``) with the model's current weights, through :func:`~hf_genrec.hub.push.push_model_dir`:
the same staging (no pickle, no local path) and the same card as ``hf-genrec push``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..models.publishing import set_model_publisher
from .push import DEFAULT_COMMIT_MESSAGE, push_model_dir
from .staging import stage_model_dir

# the model's own files, written again by save_pretrained from the weights in memory
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")


def publish_model(
    model: Any,
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    **unused: Any,
) -> str:
    """Stage the model's source folder (when it was loaded from one) plus ``model.save_pretrained``; push it."""
    with tempfile.TemporaryDirectory(prefix="hf_genrec_model_push_") as tmp:
        folder = Path(tmp) / repo_id.split("/")[-1]
        source = Path(str(getattr(model, "name_or_path", "") or ""))
        if str(source) and source.is_dir():
            stage_model_dir(source, folder)
            for name in MODEL_FILES:
                (folder / name).unlink(missing_ok=True)
            for shard in folder.glob("model-*.safetensors"):
                shard.unlink()
        model.save_pretrained(folder)
        return push_model_dir(
            folder, repo_id, token=token if isinstance(token, str) else None, private=bool(private),
            commit_message=commit_message or DEFAULT_COMMIT_MESSAGE, revision=revision, refresh_card=True,
        )


def register() -> None:
    set_model_publisher(publish_model)


__all__ = ["publish_model", "register"]
