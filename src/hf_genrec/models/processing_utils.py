"""Processors: the one input path of each model family (histories in, model inputs out).

A processor turns users' histories (item ids, oldest first) and optional user ids into the encoder
inputs its model reads.  Training collators, evaluation, ``recommend()``, batch prediction and the
model card's snippet all go through it, so a model is never scored on inputs it was not trained on.
Processors save as ``processor_config.json`` (plus their tokenizer and any tables, JSON /
safetensors only) beside the model, and load with ``AutoProcessor.from_pretrained`` after
``import hf_genrec`` or with their own ``from_pretrained``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from ..errors import CheckpointMismatchError, DataFormatError, InvalidInputError
from ..io_utils import atomic_write_json, read_json
from ..remote_code import is_package_class, save_remote_code

PROCESSOR_FILE = "processor_config.json"


class GenRecProcessor:
    """Base class: subclasses define ``__call__``, ``item_ids`` and their saved fields (``to_dict`` / ``_from_dict``)."""

    processor_format: ClassVar[str] = "hf_genrec.processor/1"
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]

    def __call__(self, histories: Sequence[Sequence[int]], user_ids: Sequence[int | None] | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def item_ids(self) -> list[int]:
        """Catalogue item ids in the order of the model's item rows (what the model can recommend)."""
        raise NotImplementedError

    @property
    def item_keys(self) -> list[str] | None:
        """The items' original keys, aligned with ``item_ids``, when the model was trained on an imported
        dataset (they travel in ``semantic_ids.json``); ``None`` otherwise."""
        return getattr(getattr(self, "semantic_id_table", None), "item_keys", None)

    # ------------------------------------------------------------------ checks shared by every family
    @staticmethod
    def check_batch(histories: Sequence[Sequence[int]], user_ids: Sequence[int | None] | None) -> list[int | None]:
        """One user id (or None) per history."""
        if user_ids is not None and len(user_ids) != len(histories):
            raise InvalidInputError(f"{len(user_ids)} user ids for {len(histories)} histories")
        return list(user_ids) if user_ids is not None else [None] * len(histories)

    def check_model(self, config: Any) -> None:
        """CheckpointMismatchError when the model's ``config`` was not built for this processor."""

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The JSON fields of ``processor_config.json`` besides ``processor_class`` and ``format``."""
        return {}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> list[str]:
        """``processor_config.json`` with an ``auto_map`` and, from the package, the processor's code beside it
        (``AutoProcessor.from_pretrained(dir, trust_remote_code=True)`` then works without hf_genrec)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / PROCESSOR_FILE
        module = type(self).__module__
        data = {"processor_class": type(self).__name__, "format": self.processor_format, **self.to_dict(),
                "auto_map": {"AutoProcessor": f"{module.rpartition('.')[2]}.{type(self).__name__}"}}
        code = save_remote_code(directory, [module]) if is_package_class(type(self)) else []
        atomic_write_json(path, data, indent=2)
        return [str(path)] + [str(p) for p in code]

    @classmethod
    def read_config(cls, pretrained_model_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> dict[str, Any]:
        """``processor_config.json`` of a folder or Hub repo, checked to name this class."""
        path = resolve_file(pretrained_model_name_or_path, PROCESSOR_FILE, **hub_kwargs)
        data = read_json(path, "processor config")
        if not isinstance(data, dict):
            raise DataFormatError("a processor config is a JSON object", path=path)
        if data.get("processor_class") != cls.__name__:
            raise CheckpointMismatchError(f"{path}: saved for {data.get('processor_class')!r}, not {cls.__name__}")
        return data

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "GenRecProcessor":
        raise NotImplementedError

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoProcessor") -> None:
        """Present for ``AutoProcessor``'s remote-code path; the package's processors are registered in-process."""


HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "subfolder")


def resolve_file(pretrained_model_name_or_path: str | os.PathLike, filename: str, **kwargs: Any) -> Path:
    """A file of a local folder or of a Hub repo (downloaded and cached by huggingface_hub)."""
    local = Path(pretrained_model_name_or_path) / (kwargs.get("subfolder") or "") / filename
    if Path(pretrained_model_name_or_path).is_dir():
        return local
    from transformers.utils import cached_file

    hub_kwargs = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
    found = cached_file(
        str(pretrained_model_name_or_path), filename, _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False, **hub_kwargs,
    )
    return Path(found) if found is not None else local


class EvalCollator:
    """Rows ``{user_id, history, targets, exclude}`` -> the processor's inputs plus those fields as lists.

    Evaluation reads ``targets`` / ``exclude`` (item ids) and ``user_id`` from the batch; the model
    never sees them.
    """

    def __init__(self, processor: GenRecProcessor, use_user_ids: bool = True) -> None:
        self.processor = processor
        self.use_user_ids = use_user_ids

    def __call__(self, rows: Sequence[dict]) -> dict[str, Any]:
        if not rows:
            raise InvalidInputError("cannot collate an empty batch")
        histories = []
        for i, row in enumerate(rows):
            if "history" not in row:
                raise InvalidInputError(f"batch row {i} has no 'history' field")
            histories.append(row["history"])
        users = [row.get("user_id") for row in rows] if self.use_user_ids else None
        batch: dict[str, Any] = dict(self.processor(histories, users))
        batch["user_id"] = [row.get("user_id") for row in rows]
        batch["targets"] = [list(row.get("targets") or []) for row in rows]
        batch["exclude"] = [list(row.get("exclude") or []) for row in rows]
        return batch


def check_tokenizer_matches_config(config: Any, tokenizer: Any) -> None:
    """The tokenizer's ID table and vocabulary must be the ones the model's config was built for."""
    table = tokenizer.semantic_id_table
    problems = []
    if list(config.codebook_sizes) != list(table.codebook_sizes):
        problems.append(
            f"model codebook sizes {list(config.codebook_sizes)} (config.json) disagree with the semantic-ID table's "
            f"{table.codebook_sizes}"
        )
    if config.vocab_size != len(tokenizer):
        problems.append(f"vocab_size {config.vocab_size} (config.json) disagrees with the tokenizer's {len(tokenizer)} tokens")
    if getattr(config, "level_offsets", None) is not None and list(config.level_offsets) != list(tokenizer.level_offsets):
        problems.append(
            f"level_offsets {list(config.level_offsets)} (config.json) disagree with the tokenizer's {list(tokenizer.level_offsets)}"
        )
    if config.pad_token_id != tokenizer.pad_token_id:
        problems.append(f"pad_token_id {config.pad_token_id} (config.json) disagrees with the tokenizer's {tokenizer.pad_token_id}")
    for name in ("decoder_start_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(config, name, None)
        ids = value if isinstance(value, list) else [value] if value is not None or name == "decoder_start_token_id" else []
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(tokenizer) for i in ids):
            problems.append(f"{name} {value!r} (config.json) is not a token id of the tokenizer's {len(tokenizer)} tokens")
    if problems:
        raise CheckpointMismatchError("; ".join(problems))


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad lists of ints to the longest into a LongTensor."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return out


def with_length_column(dataset: Any) -> Any:
    """Add ``length`` (history size) so ``train_sampling_strategy: group_by_length`` needs no tokenisation pass."""
    return dataset.map(lambda row: {"length": len(row["history"])}, desc="lengths")


__all__ = ["EvalCollator", "GenRecProcessor", "PROCESSOR_FILE", "resolve_file", "check_tokenizer_matches_config", "pad_rows", "with_length_column"]
