"""The item tokenizers' inputs: the embedding-matrix check and per-dimension standardisation, one
definition each for every item tokenizer.

Sentence embeddings are unit-norm with a few near-constant dimensions; quantising them raw collapses
codebooks, so RQ-VAE, RQ-KMeans and the co-occurrence mix work on ``(x - mean) / std``.  A spread
below ``MIN_STD`` is clamped (one MiniLM dimension has a spread of ~1e-33: dividing by it would
amplify float noise), and a single row has no spread at all: its ``std`` is 1.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, InvalidInputError

MIN_STD = 1e-6


def embedding_matrix(embeddings: Any, fitted_dim: int | None = None) -> torch.Tensor:
    """``embeddings`` as a finite float32 CPU tensor ``[N, D]`` (N >= 1), of ``fitted_dim`` columns when given."""
    x = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidInputError(f"embeddings must be a non-empty [N, D] matrix, got shape {tuple(x.shape)}")
    x = x.detach().float().cpu()
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("embeddings contain NaN or infinite values")
    if fitted_dim is not None and x.shape[1] != fitted_dim:
        raise InvalidInputError(f"embeddings have {x.shape[1]} dimensions, the tokenizer was fit on {fitted_dim}")
    return x


def config_from_dict(cls: type, data: dict[str, Any], source: object, what: str) -> Any:
    """A saved tokenizer config (a dataclass) from its JSON; unknown keys are a ConfigError naming ``source``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - {"format", "input_dim"})
    if unknown:
        raise ConfigError(f"{source}: unknown {what} config keys {unknown}")
    return cls(**{k: v for k, v in data.items() if k in known})


def standardization(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` per dimension of the rows of ``x`` [N, D], ``std`` clamped to at least ``MIN_STD``."""
    x = x.float()
    mean = x.mean(0)
    std = x.std(0).clamp_min(MIN_STD) if x.shape[0] > 1 else torch.ones_like(mean)
    return mean, std


def standardize(x: torch.Tensor) -> torch.Tensor:
    """``x`` standardised with its own statistics."""
    mean, std = standardization(x)
    return (x.float() - mean) / std


__all__ = ["MIN_STD", "config_from_dict", "embedding_matrix", "standardization", "standardize"]
