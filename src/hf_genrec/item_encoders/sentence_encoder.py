"""Item text -> embedding with any sentence-transformers model, cached on disk as safetensors.

The cache key hashes the encoder's identity (its name, or for a local model directory the path,
size and mtime of its files, or for an in-memory model its weights) together with every text, so a
changed text or a changed encoder never reuses a stale file.  Writes are atomic.

Besides sentence-transformers models, the encoder may be a saved LoRA adapter directory (base +
adapter, see ``lora_adapters.py``; its identity is the adapter's bytes + the base's) or a plain transformers
checkpoint such as a decoder-only LLM (Transformer + mean / last-token pooling, ``llm_encoder.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import ConfigError, InvalidInputError
from ..io_utils import atomic_save_tensors
from .lora_adapters import adapter_fingerprint, is_adapter_dir, load_adapted_encoder
from .plain_encoder import default_encoder_path, load_plain_encoder, plain_encoder_fingerprint

logger = logging.getLogger(__name__)

CACHE_ENV = "HF_GENREC_CACHE"
CACHE_FORMAT = "hf_genrec.embeddings/1"


def default_cache_dir() -> Path:
    """``$HF_GENREC_CACHE`` if set, else ``~/.cache/hf_genrec/embeddings``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hf_genrec" / "embeddings"


def encoder_fingerprint(encoder: Any) -> str:
    """A string that changes whenever the encoder's weights or configuration may have changed.

    - local directory: resolved path + (relative path, size, mtime) of every file in it;
    - Hub id: the id + the locally cached snapshot it resolves to, if any;
    - loaded ``SentenceTransformer``: a hash of its parameters and buffers;
    - LoRA adapter directory: a hash of the adapter files + the fingerprint of its resolved base.
    """
    if not isinstance(encoder, torch.nn.Module) and is_adapter_dir(str(encoder)):
        return adapter_fingerprint(encoder)
    return plain_encoder_fingerprint(encoder)


def embedding_cache_key(fingerprint: str, texts: Sequence[str], normalize_embeddings: bool = False) -> str:
    """Hash of encoder fingerprint, options and every text (length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, fingerprint, f"normalize={bool(normalize_embeddings)}", f"n={len(texts)}"):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not texts:
        raise InvalidInputError("texts is empty: nothing to encode")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{index}] is {type(text).__name__}, not str")
    return texts


def _read_cache(path: Path, expected_rows: int) -> torch.Tensor | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        embeddings = load_file(str(path))["embeddings"]
    except (OSError, KeyError, SafetensorError) as exc:
        logger.warning("ignoring unreadable embedding cache %s (%s)", path, exc)
        return None
    if embeddings.ndim != 2 or embeddings.shape[0] != expected_rows:
        logger.warning("ignoring embedding cache %s of shape %s", path, tuple(embeddings.shape))
        return None
    return embeddings


def load_sentence_encoder(
    model_name_or_path: str | os.PathLike | None = None, device: str | None = None, pooling: str | None = None
):
    """A ``SentenceTransformer`` from a Hub id or local path (default: the bundled MiniLM); never remote code.

    A LoRA adapter directory loads base + adapter; a plain transformers checkpoint (no
    ``modules.json``, e.g. a decoder-only LLM) or any model given a ``pooling`` (``"mean"`` /
    ``"lasttoken"``) is wrapped as Transformer + Pooling.
    """
    name = str(model_name_or_path) if model_name_or_path is not None else default_encoder_path()
    if is_adapter_dir(name):
        if pooling is not None:
            raise ConfigError(f"{name}: an adapter directory records its own pooling; do not pass pooling")
        return load_adapted_encoder(name, device=device)
    return load_plain_encoder(name, device=device, pooling=pooling)


def encode_item_texts(
    texts: Sequence[str],
    model_name_or_path: Any = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    show_progress_bar: bool = True,
    normalize_embeddings: bool = False,
    use_cache: bool = True,
    pooling: str | None = None,
) -> torch.FloatTensor:
    """Embed item texts, ``FloatTensor [N, D]`` on the CPU, reusing an on-disk cache when valid.

    Args:
        texts: one text per item.
        model_name_or_path: sentence-transformers Hub id, local directory, or a loaded
            ``SentenceTransformer``; ``None`` is the bundled all-MiniLM-L6-v2.
        batch_size: encoder batch size.
        cache_dir: cache directory (default :func:`default_cache_dir`).
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        show_progress_bar: tqdm bar on stderr while encoding.
        normalize_embeddings: L2-normalise the outputs (part of the cache key).
        use_cache: read and write the cache.
        pooling: for a plain transformers checkpoint (e.g. a decoder-only LLM): ``"mean"`` (default)
            or ``"lasttoken"``; part of the cache key.

    Raises:
        InvalidInputError: empty or non-string texts, or non-finite embeddings.
        ConfigError: the encoder cannot be loaded.
    """
    texts = _check_texts(texts)
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    encoder = default_encoder_path() if model_name_or_path is None else model_name_or_path
    cache_path = None
    if use_cache:
        fingerprint = encoder_fingerprint(encoder) + (f"|pooling={pooling}" if pooling is not None else "")
        key = embedding_cache_key(fingerprint, texts, normalize_embeddings)
        cache_path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        cache_path = cache_path / f"{key}.safetensors"
        if cache_path.is_file():
            cached = _read_cache(cache_path, len(texts))
            if cached is not None:
                logger.info("embeddings of %d texts read from cache %s", len(texts), cache_path)
                return cached

    if isinstance(encoder, torch.nn.Module):
        model = encoder  # a loaded model stays where its owner put it unless a device is named
        device = device or str(getattr(model, "device", "cpu"))
    else:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_sentence_encoder(encoder, device=device, pooling=pooling)
    start = time.perf_counter()
    embeddings = model.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        convert_to_tensor=True,
        normalize_embeddings=normalize_embeddings,
        device=device,
    )
    embeddings = embeddings.detach().float().cpu()
    if not bool(torch.isfinite(embeddings).all()):
        bad = int((~torch.isfinite(embeddings)).any(dim=1).nonzero()[0])
        raise InvalidInputError(f"the encoder produced NaN/inf embeddings (first at text {bad}: {texts[bad][:80]!r})")
    logger.info("encoded %d texts in %.1f s (%s)", len(texts), time.perf_counter() - start, device)
    if cache_path is not None:
        atomic_save_tensors(
            cache_path,
            {"embeddings": embeddings},
            metadata={"format": CACHE_FORMAT, "encoder": str(encoder)[:200], "num_texts": str(len(texts))},
        )
    return embeddings


__all__ = [
    "CACHE_ENV",
    "default_cache_dir",
    "default_encoder_path",
    "embedding_cache_key",
    "encode_item_texts",
    "encoder_fingerprint",
    "load_sentence_encoder",
]
