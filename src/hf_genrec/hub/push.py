"""Publish a saved hf_genrec model directory to the Hugging Face Hub.

A saved directory holds everything a user needs: ``config.json`` + ``model.safetensors``, the
tokenizer files, ``semantic_ids.json`` (the item <-> ID table), and optionally ``eval_results.json``
and ``recipe.yaml``.  :func:`push_model_dir` uploads it as one commit with ``HfApi.create_repo`` +
``upload_folder``, after writing a model card (``README.md``) if the directory has none of its own.

Training-time artefacts that are pickles or intermediate checkpoints (``training_args.bin``,
``optimizer.pt``, ``scheduler.pt``, ``rng_state*.pth``, ``checkpoint-*/``) are never uploaded.

Pushing from the Trainer
------------------------
``GenRecTrainer`` / ``transformers.Trainer`` with ``TrainingArguments(push_to_hub=True,
hub_model_id="org/tiger-beauty", hub_strategy="every_save")`` uploads ``output_dir`` itself each time
it saves, and ``trainer.push_to_hub()`` uploads it once more at the end: the model plus whatever else
was saved into ``output_dir`` — the tokenizer when it is passed as ``processing_class=``, and
``semantic_ids.json`` only if the training code saves the table there.  ``trainer.push_to_hub()``
first overwrites ``output_dir/README.md`` with the Trainer's generic card (``library_name:
transformers``, no results for custom tasks).  Publish the finished directory with
``hf-genrec push --model OUTPUT_DIR --repo-id org/name`` (or :func:`push_model_dir`) instead, or
after it: a README whose metadata does not say ``library_name: hf_genrec`` is replaced by this
package's card, which carries the evaluation results and the recipe.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointMismatchError, DataFormatError, InvalidInputError
from ..semantic_ids.id_table import SEMANTIC_ID_FILE, SemanticIdTable
from .model_cards import LIBRARY_NAME, MODEL_CARD_FILE, save_model_card

DEFAULT_COMMIT_MESSAGE = "Upload hf_genrec model"
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/**",
    "runs/**",
    "**/.*.tmp",
    ".*.tmp",
    "training_args.bin",
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
    "**/__pycache__/**",
    ".hf_genrec_run.json",  # the run marker and lock of the training folder (hf_genrec.output_folders)
    ".hf_genrec.lock",
]


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """Fail before any network call if the directory is not a loadable saved model."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise DataFormatError("model directory not found", path=model_dir)
    if not (model_dir / "config.json").is_file():
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
) -> str:
    """Upload a saved model directory to ``repo_id`` (created if needed) and return the repo URL.

    A model card is rendered into ``model_dir/README.md`` first when the directory has none, when
    its README is not an hf_genrec card (e.g. the Trainer's generic one), or when ``refresh_card``
    (``family`` defaults to the one inferred from ``config.json``).  ``token`` defaults to the
    logged-in / ``HF_TOKEN`` token and ``endpoint`` to ``HF_ENDPOINT``.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidInputError(f"invalid repo id {repo_id!r}: {exc}") from None
    model_dir = check_model_dir(model_dir)
    if refresh_card or not has_own_model_card(model_dir):
        save_model_card(model_dir, family, repo_id=repo_id)

    api = HfApi(endpoint=endpoint, token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(
        repo_id=repo_url.repo_id,
        folder_path=str(model_dir),
        commit_message=commit_message,
        revision=revision,
        ignore_patterns=list(IGNORE_PATTERNS),
        repo_type="model",
    )
    return str(repo_url)
