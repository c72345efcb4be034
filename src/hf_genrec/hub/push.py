"""Publish a saved hf_genrec model directory to the Hugging Face Hub.

A saved directory holds everything a user needs: ``config.json`` + ``model.safetensors`` (or, for a
LoRA fine-tuning run, ``adapter_config.json`` + ``adapter_model.safetensors``), the processor and
tokenizer files, ``semantic_ids.json`` (the item <-> ID table), and optionally ``eval_results.json``
and ``recipe.yaml``.  :func:`push_model_dir` stages a copy (:mod:`~hf_genrec.hub.staging`: no pickle,
no checkpoint, no absolute path of the training machine), renders the model card into it unless the
folder has an hf_genrec card of its own, and uploads it as one commit.  The user's folder is never
changed.

Every route publishes the same way, with the same card (model-index from ``eval_results.json``):
``hf-genrec push``, ``GenRecTrainer.push_to_hub()`` (and ``push_to_hub: true`` in a recipe) and
``model.push_to_hub(repo_id)`` on a model loaded from a saved folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import CheckpointMismatchError, ConfigError, DataFormatError, InvalidInputError
from ..item_encoders.lora_adapters import ADAPTER_CONFIG_FILE
from ..semantic_ids.id_table import SEMANTIC_ID_FILE, SemanticIdTable
from .model_cards import LIBRARY_NAME, MODEL_CARD_FILE, infer_family, save_model_card
from .staging import find_local_path, local_path_markers, stage_model_dir

DEFAULT_COMMIT_MESSAGE = "Upload hf_genrec model"


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """Fail before any network call if the directory is not a loadable saved model."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise DataFormatError("model directory not found", path=model_dir)
    if not (model_dir / "config.json").is_file() and not (model_dir / ADAPTER_CONFIG_FILE).is_file():
        raise DataFormatError("not a saved model: config.json is missing", path=model_dir)
    if not any(model_dir.glob("*.safetensors")) and not (model_dir / "model.safetensors.index.json").exists():
        raise DataFormatError("not a saved model: no *.safetensors weights", path=model_dir)
    table_path = model_dir / SEMANTIC_ID_FILE
    if table_path.exists():
        try:
            SemanticIdTable.load(table_path)  # a corrupt table must not reach the Hub
        except CheckpointMismatchError as exc:
            raise CheckpointMismatchError(f"{table_path}: {exc}") from None
    return model_dir


def has_own_model_card(model_dir: str | os.PathLike) -> bool:
    """Whether ``README.md`` exists and its metadata says ``library_name: hf_genrec`` (a card to keep)."""
    from huggingface_hub import ModelCard

    path = Path(model_dir) / MODEL_CARD_FILE
    if not path.exists():
        return False
    try:
        return ModelCard.load(path, ignore_metadata_errors=True).data.get("library_name") == LIBRARY_NAME
    except ValueError:  # unparsable metadata: not ours
        return False


def push_model_dir(
    model_dir: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    *,
    family: str | None = None,
    revision: str | None = None,
    endpoint: str | None = None,
    refresh_card: bool = False,
    base_model: str | None = None,
) -> str:
    """Upload a staged copy of a saved model directory to ``repo_id`` (created if needed); the repo URL.

    The card is rendered when the directory has no hf_genrec card of its own (e.g. none, or the
    Trainer's or peft's generic one) or when ``refresh_card`` (``family`` defaults to the one
    inferred from ``config.json``).  ``base_model``: for an adapter folder, the Hub id of the model
    it adapts.  ``token`` defaults to the logged-in / ``HF_TOKEN`` token and ``endpoint`` to
    ``HF_ENDPOINT``.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidInputError(f"invalid repo id {repo_id!r}: {exc}") from None
    model_dir = check_model_dir(model_dir)
    with tempfile.TemporaryDirectory(prefix="hf_genrec_push_") as tmp:
        staged = stage_model_dir(model_dir, Path(tmp) / model_dir.resolve().name, base_model=base_model)
        if refresh_card or not has_own_model_card(model_dir):
            family = family or infer_family(model_dir)
            if family is None:
                raise ConfigError(f"cannot tell the model family of {model_dir} from config.json's model_type; pass family= "
                                  "(hf-genrec push --family)")
            save_model_card(staged, family, repo_id=repo_id)
        leak = find_local_path(staged, local_path_markers(model_dir, tmp))
        if leak is not None:
            raise ConfigError(f"{model_dir / leak[0]} contains the local path {leak[1]!r}: remove it before publishing")
        api = HfApi(endpoint=endpoint, token=token)
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_url.repo_id, folder_path=str(staged), commit_message=commit_message, revision=revision,
            repo_type="model",
        )
    return str(repo_url)
