"""LoRA adapters on item text encoders: adding one, saving it (with its card and metadata), fingerprinting
and loading it onto its base.

Saved adapter directory (``save_adapter``): the sentence-transformers layout (``modules.json``,
pooling, tokenizer, ``sentence_bert_config.json``) with ``adapter_config.json`` +
``adapter_model.safetensors`` in place of the weights, a model card and
``hf_genrec_item_encoder.json`` (base kind, pooling, training summary).  LoRA is peft's
``get_peft_model(..., LoraConfig(task_type=FEATURE_EXTRACTION))`` on the encoder's inner
transformers model (``transformers``' own ``add_adapter`` needs peft >= 0.22 in this stack).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from ..errors import ConfigError, DataFormatError
from ..io_utils import atomic_write_json, atomic_write_text
from .llm_encoder import DEFAULT_POOLING, is_plain_transformers_dir, load_llm_encoder, saved_pooling_mode
from .lora_base_models import check_hub_id, local_copy_of, resolve_base_model
from .plain_encoder import load_plain_encoder, plain_encoder_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
METADATA_FILE = "hf_genrec_item_encoder.json"
METADATA_FORMAT = "hf_genrec.item_encoder_lora/1"
BASE_KINDS = ("sentence-transformers", "transformers")
_FINGERPRINT_SKIPPED = {"README.md", ".gitattributes"}


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """A local directory holding a PEFT adapter (``adapter_config.json``)."""
    path = Path(str(path)).expanduser()
    return path.is_dir() and (path / ADAPTER_CONFIG_FILE).is_file()


def read_json_object(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFormatError(f"{what} cannot be read ({exc})", path=path) from None
    except ValueError as exc:
        raise DataFormatError(f"{what} is not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{what} must be a JSON object", path=path)
    return data


def adapter_metadata(adapter_dir: str | os.PathLike) -> dict:
    """``hf_genrec_item_encoder.json`` of an adapter directory (``{}`` for foreign adapters)."""
    path = Path(adapter_dir) / METADATA_FILE
    return read_json_object(path, "item encoder metadata") if path.is_file() else {}


def adapter_fingerprint(adapter_dir: str | os.PathLike) -> str:
    """Identity of adapted encoder: the bytes of every adapter file + the resolved base's fingerprint.

    Content, not mtimes: a copied adapter reuses the embedding cache, a retrained one never does.
    """
    adapter_dir = Path(adapter_dir).expanduser().resolve()
    digest = hashlib.blake2b(digest_size=16)
    for file in sorted(p for p in adapter_dir.rglob("*") if p.is_file()):
        relative = file.relative_to(adapter_dir)
        if file.name in _FINGERPRINT_SKIPPED or any(part.startswith(".") for part in relative.parts):
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    recorded = read_json_object(adapter_dir / ADAPTER_CONFIG_FILE, "adapter config").get("base_model_name_or_path", "")
    try:
        base = plain_encoder_fingerprint(resolve_base_model(recorded))
    except ConfigError:
        base = f"unresolved:{recorded}"
    return f"adapter:{digest.hexdigest()}|base:{base}"


def add_lora_adapter(
    model: "SentenceTransformer",
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
) -> "SentenceTransformer":
    """Wrap the encoder's inner transformers model with a fresh LoRA adapter (peft ``get_peft_model``).

    ``target_modules=None`` uses peft's default for the architecture (BERT: query/value; Llama:
    q_proj/v_proj).  Only the LoRA matrices are trainable afterwards.
    """
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    transformer = _transformer_module(model)
    if isinstance(transformer.model, PeftModel):
        raise ConfigError("the encoder already carries a PEFT adapter")
    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=list(target_modules) if target_modules else None,
    )
    try:
        transformer.model = get_peft_model(transformer.model, config)
    except ValueError as exc:
        raise ConfigError(f"LoRA cannot be added to {type(transformer.model).__name__}: {exc}") from None
    return model


def _transformer_module(model: "SentenceTransformer"):
    from sentence_transformers.base.modules import Transformer

    first = model[0]
    if not isinstance(first, Transformer):
        raise ConfigError(f"the encoder's first module is {type(first).__name__}, not a transformers model")
    return first


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_adapter(
    model: "SentenceTransformer",
    output_dir: str | os.PathLike,
    base_model_id: str,
    base_kind: str = "sentence-transformers",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a LoRA-adapted encoder: adapter weights (safetensors) + its sentence-transformers modules.

    ``base_model_name_or_path`` in ``adapter_config.json`` is rewritten to ``base_model_id``.  Files
    are written into a temporary sibling directory first and moved in one by one (each rename is
    atomic), so a crash never leaves a half-written adapter file in ``output_dir``.
    """
    from peft import PeftModel

    check_hub_id(base_model_id)
    if base_kind not in BASE_KINDS:
        raise ConfigError(f"base_kind must be one of {BASE_KINDS}, got {base_kind!r}")
    if not isinstance(_transformer_module(model).model, PeftModel):
        raise ConfigError("the encoder has no LoRA adapter to save (add_lora_adapter first)")
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    try:
        model.save(str(staging), create_model_card=False, safe_serialization=True)
        config_path = staging / ADAPTER_CONFIG_FILE
        if not config_path.is_file() or not (staging / ADAPTER_WEIGHTS_FILE).is_file():
            raise ConfigError("saving did not produce adapter_config.json + adapter_model.safetensors")
        config = read_json_object(config_path, "adapter config")
        config["base_model_name_or_path"] = base_model_id
        atomic_write_json(config_path, config, indent=2)
        pooling = saved_pooling_mode(staging)
        info = {
            "format": METADATA_FORMAT,
            "base_model_id": base_model_id,
            "base_kind": base_kind,
            "pooling": pooling,
            "max_seq_length": model.max_seq_length,
            **dict(metadata or {}),
        }
        atomic_write_json(staging / METADATA_FILE, info, indent=2)
        atomic_write_text(staging / "README.md", _model_card(base_model_id, info))
        output_dir.mkdir(parents=True, exist_ok=True)
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = output_dir / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def _model_card(base_model_id: str, info: Mapping[str, Any]) -> str:
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        base_model=base_model_id,
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=["hf_genrec", "peft", "lora", "item-encoder", "generative-recommendation"],
    )
    results = {k: info[k] for k in ("dataset", "pairs", "train_steps", "before", "after") if k in info}
    return (
        f"---\n{data.to_yaml()}\n---\n\n# LoRA item text encoder on {base_model_id}\n\n"
        "A LoRA adapter trained with `hf-genrec finetune-item-encoder` on pairs of items that follow each "
        "other in users' training histories (MultipleNegativesRankingLoss, in-batch negatives).\n\n"
        "```python\nfrom hf_genrec.item_encoders import load_adapted_encoder, encode_item_texts\n"
        "model = load_adapted_encoder(ADAPTER_DIR)  # base + adapter\n"
        "embeddings = encode_item_texts(texts, ADAPTER_DIR)  # or through the embedding cache\n```\n\n"
        f"```json\n{json.dumps(results, indent=2)}\n```\n"
    )


def load_adapted_encoder(
    adapter_dir: str | os.PathLike,
    base_model: str | os.PathLike | None = None,
    device: str | None = None,
) -> "SentenceTransformer":
    """Base encoder + saved LoRA adapter, ready to ``encode`` (eval mode).

    ``adapter_dir`` is a local directory or a Hub repo id (downloaded with ``snapshot_download``).
    The base comes from :func:`resolve_base_model`; its kind (sentence-transformers model or plain
    transformers checkpoint + pooling) from the adapter's metadata.
    """
    from peft import PeftModel

    path = Path(str(adapter_dir)).expanduser()
    if not path.is_dir() and not str(adapter_dir).startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download

        try:
            path = Path(snapshot_download(str(adapter_dir)))
        except Exception as exc:  # network / not found / offline: one error type for callers
            raise ConfigError(f"adapter {adapter_dir!r} could not be fetched: {exc}") from None
    if not is_adapter_dir(path):
        raise ConfigError(f"{adapter_dir}: not an adapter directory (no {ADAPTER_CONFIG_FILE})")
    recorded = read_json_object(path / ADAPTER_CONFIG_FILE, "adapter config").get("base_model_name_or_path") or ""
    metadata = adapter_metadata(path)
    base = resolve_base_model(recorded, base_model)
    try:
        model = _load_base(base, path, metadata, device)
    except ConfigError:
        local = local_copy_of(recorded) if base_model is None and base == recorded else None
        if local is None:
            raise
        logger.warning("base model %r could not be loaded from the Hub; using its local copy %s", recorded, local)
        model = _load_base(local, path, metadata, device)
    transformer = _transformer_module(model)
    try:
        transformer.model = PeftModel.from_pretrained(transformer.model, str(path), is_trainable=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{path}: adapter does not fit base model {base!r}: {exc}") from None
    return model.eval()


def _load_base(base: str, adapter_dir: Path, metadata: Mapping[str, Any], device: str | None):
    kind = metadata.get("base_kind") or ("transformers" if is_plain_transformers_dir(base) else "sentence-transformers")
    max_seq_length = metadata.get("max_seq_length")
    st_config = adapter_dir / "sentence_bert_config.json"
    if max_seq_length is None and st_config.is_file():
        max_seq_length = read_json_object(st_config, "sentence_bert_config.json").get("max_seq_length")
    if kind == "transformers":
        pooling = metadata.get("pooling") or saved_pooling_mode(adapter_dir) or DEFAULT_POOLING
        return load_llm_encoder(base, pooling=pooling, max_seq_length=max_seq_length, device=device)
    model = load_plain_encoder(base, device=device)
    if max_seq_length is not None:
        model.max_seq_length = int(max_seq_length)
    return model


def saved_pooling_mode_of(model: "SentenceTransformer") -> str | None:
    """The pooling mode of a loaded encoder's Pooling module, if any."""
    for module in model:
        mode = getattr(module, "pooling_mode", None)
        if isinstance(mode, str):
            return mode
    return None


__all__ = [
    "ADAPTER_CONFIG_FILE",
    "ADAPTER_WEIGHTS_FILE",
    "METADATA_FILE",
    "adapter_fingerprint",
    "adapter_metadata",
    "add_lora_adapter",
    "is_adapter_dir",
    "load_adapted_encoder",
    "read_json_object",
    "save_adapter",
    "saved_pooling_mode_of",
    "trainable_parameters",
]
