"""Recall@K and NDCG@K over ranked lists, vectorised, for one or several targets per user.

Recall@K = |top-K ∩ targets| / |targets|.  NDCG@K = DCG@K / IDCG@K with binary gains, where the
ideal ranking puts min(|targets|, K) hits first.  With one target, Recall@K is the hit rate.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from ..errors import InvalidInputError

PAD = -1


def pad_lists(lists: Sequence[Sequence[int]], width: int | None = None, pad: int = PAD) -> torch.Tensor:
    """Ragged integer lists -> a [N, width] LongTensor padded with ``pad``."""
    width = width if width is not None else max((len(x) for x in lists), default=0)
    out = torch.full((len(lists), max(width, 1)), pad, dtype=torch.long)
    for row, values in enumerate(lists):
        values = list(values)[:width]
        if values:
            out[row, : len(values)] = torch.as_tensor(values, dtype=torch.long)
    return out


def ranking_metric_names(ks: Sequence[int]) -> list[str]:
    """The keys :func:`ranking_metrics` returns for ``ks`` (what a run can select its best model on)."""
    return [name for k in ks for name in (f"recall@{k}", f"ndcg@{k}")]


def ranking_metrics(
    ranked: torch.Tensor | Sequence[Sequence[int]],
    targets: torch.Tensor | Sequence[Sequence[int]],
    ks: Sequence[int] = (5, 10),
    reduce: bool = True,
) -> dict[str, float] | dict[str, torch.Tensor]:
    """Recall@K and NDCG@K for each K; ``ranked`` best first, both padded with -1 (or ragged lists).

    Users without any target are an error: they would silently dilute the averages.  An item
    listed twice counts once (its first rank; repeated targets count once too), so both metrics
    stay in [0, 1] whatever the input.
    """
    ks = list(ks)
    if not ks or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise InvalidInputError(f"ks must be positive integers, got {ks!r}")
    ranked = ranked if isinstance(ranked, torch.Tensor) else pad_lists(ranked)
    targets = targets if isinstance(targets, torch.Tensor) else pad_lists(targets)
    if ranked.shape[0] != targets.shape[0]:
        raise InvalidInputError(f"{ranked.shape[0]} ranked lists for {targets.shape[0]} target lists")
    if ranked.shape[0] == 0:
        raise InvalidInputError("no users to score: the metrics of an empty set of users are undefined")
    sorted_targets = targets.sort(dim=1).values
    repeated = torch.zeros_like(sorted_targets, dtype=torch.bool)
    repeated[:, 1:] = sorted_targets[:, 1:] == sorted_targets[:, :-1]
    n_targets = ((sorted_targets != PAD) & ~repeated).sum(dim=1)
    if (n_targets == 0).any():
        raise InvalidInputError(f"{int((n_targets == 0).sum())} users have no target item")
    max_k = max(ks)
    if ranked.shape[1] < max_k:
        ranked = torch.cat([ranked, ranked.new_full((ranked.shape[0], max_k - ranked.shape[1]), PAD)], dim=1)
    top = ranked[:, :max_k]
    # hits[u, r] = the item at rank r is one of u's targets (padding never hits)
    hits = ((top.unsqueeze(2) == targets.unsqueeze(1)) & (targets.unsqueeze(1) != PAD)).any(dim=2) & (top != PAD)
    earlier = torch.ones(max_k, max_k, dtype=torch.bool, device=top.device).tril(-1)  # earlier[r, j]: rank j comes before rank r
    hits &= ~((top.unsqueeze(2) == top.unsqueeze(1)) & earlier).any(dim=2)  # a repeated item hits once
    hits = hits.double()
    discounts = 1.0 / torch.log2(torch.arange(2, max_k + 2, dtype=torch.double))
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        out[f"recall@{k}"] = hits[:, :k].sum(dim=1) / n_targets.double()
        dcg = (hits[:, :k] * discounts[:k]).sum(dim=1)
        ideal = torch.cumsum(discounts[:k], dim=0)[(n_targets.clamp(max=k) - 1)]
        out[f"ndcg@{k}"] = dcg / ideal
    if not reduce:
        return out
    return {name: float(values.mean()) for name, values in out.items()}
