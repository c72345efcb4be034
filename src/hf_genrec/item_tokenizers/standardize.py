"""Per-dimension standardisation statistics, the one definition every item tokenizer uses.

Sentence embeddings are unit-norm with a few near-constant dimensions; quantising them raw collapses
codebooks, so RQ-VAE, RQ-KMeans and the co-occurrence mix work on ``(x - mean) / std``.  A spread
below ``MIN_STD`` is clamped (one MiniLM dimension has a spread of ~1e-33: dividing by it would
amplify float noise), and a single row has no spread at all: its ``std`` is 1.
"""

from __future__ import annotations

import torch

MIN_STD = 1e-6


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


__all__ = ["MIN_STD", "standardization", "standardize"]
