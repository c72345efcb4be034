"""The package's one k-means: greedy k-means++ seeding and Lloyd's iterations in torch, chunked nearest-centroid search.

Used by RQ-KMeans (every level), the RQ-VAE (codebook initialisation) and ColaRec's size-constrained
k-means (its seeding; its assignment step adds the size cap).
"""

from __future__ import annotations

import math

import torch

from ..errors import InvalidInputError


def nearest_centroid(x: torch.Tensor, centroids: torch.Tensor, chunk_size: int = 16384) -> torch.Tensor:
    """Index of the nearest centroid of every row of ``x`` (chunked to bound memory).

    ``argmin_j ||x - c_j||^2 = argmin_j (||c_j||^2 - 2 x.c_j)``: one fused addmm per chunk.
    """
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=x.device)
    c_norms = centroids.pow(2).sum(-1)
    return torch.cat(
        [torch.addmm(c_norms, chunk, centroids.T, alpha=-2.0).argmin(-1) for chunk in x.split(chunk_size)]
    )


def kmeans(
    x: torch.Tensor,
    num_clusters: int,
    num_iters: int = 20,
    generator: torch.Generator | None = None,
    init_method: str = "kmeans++",
    max_points: int | None = None,
    initial_centroids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means in torch; returns ``(centroids [k, D], assignments [N])``.

    ``initial_centroids`` (warm start, e.g. the previous round of OPQ) replaces ``init_method``.

    Deterministic for a given ``generator`` state.  Empty clusters are re-seeded with the points
    farthest from their centroids, so every centroid stays on the data.  With fewer points than
    clusters the extra centroids repeat points (they simply stay unused).  With more than
    ``max_points`` points the centroids are fit on a seeded sample of that many (as faiss does: a
    few hundred points a centroid fix them well) and every point is then assigned, so a million
    items cost one assignment pass beyond the fit, not twenty.
    """
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidInputError(f"k-means needs a non-empty 2-D tensor, got shape {tuple(x.shape)}")
    x = x.detach().float()
    if max_points is not None and x.shape[0] > max_points:
        rows = torch.randperm(x.shape[0], generator=generator, device="cpu")[:max_points].sort().values
        centroids, _ = kmeans(x[rows.to(x.device)], num_clusters, num_iters, generator, init_method, initial_centroids=initial_centroids)
        return centroids, nearest_centroid(x, centroids)
    n = x.shape[0]
    if initial_centroids is not None:
        centroids = initial_centroids.detach().float().clone()
    elif init_method == "kmeans++":
        centroids = kmeans_plus_plus(x, num_clusters, generator)
    elif init_method == "random":
        if n >= num_clusters:
            rows = torch.randperm(n, generator=generator, device="cpu")[:num_clusters]
        else:
            rows = torch.randint(n, (num_clusters,), generator=generator, device="cpu")
        centroids = x[rows.to(x.device)].clone()
    else:
        raise InvalidInputError(f"unknown k-means init {init_method!r} (use 'kmeans++' or 'random')")

    assign = nearest_centroid(x, centroids)
    for _ in range(num_iters):
        counts = torch.bincount(assign, minlength=num_clusters)
        # scatter_add is vectorised on CPU; index_add_ walks the rows one by one there
        sums = torch.zeros_like(centroids).scatter_add_(0, assign[:, None].expand(-1, x.shape[1]), x)
        new = sums / counts.clamp_min(1)[:, None].to(x.dtype)
        empty = counts == 0
        if bool(empty.any()) and n >= num_clusters:
            # far points are the worst served: give each empty cluster one of them
            dist = (x - new[assign]).pow(2).sum(-1)
            far = dist.argsort(descending=True)[: int(empty.sum())]
            new[empty] = x[far]
        elif bool(empty.any()):
            new[empty] = centroids[empty]
        new_assign = nearest_centroid(x, new)
        centroids = new
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
    return centroids, assign


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; scikit-learn's variant): each step
    samples ``2 + log k`` candidates by squared distance and keeps the one that lowers the potential most."""
    n = x.shape[0]
    trials = 2 + int(math.log(k)) if k > 1 else 1
    norms = x.pow(2).sum(-1)
    first = int(torch.randint(n, (1,), generator=generator, device="cpu"))
    chosen = [first]
    d2 = (norms - 2.0 * (x @ x[first]) + norms[first]).clamp_min_(0.0)
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0.0:
            candidates = torch.randint(n, (trials,), generator=generator, device="cpu")
        else:
            candidates = torch.multinomial((d2 / total).double().cpu(), trials, replacement=True, generator=generator)
        candidates = candidates.to(x.device)
        cand_d2 = (norms[:, None] - 2.0 * (x @ x[candidates].T) + norms[candidates][None, :]).clamp_min_(0.0)
        cand_d2 = torch.minimum(d2[:, None], cand_d2)
        best = int(cand_d2.sum(0).argmin())
        chosen.append(int(candidates[best]))
        d2 = cand_d2[:, best].contiguous()
    return x[torch.tensor(chosen, device=x.device)].clone()


__all__ = ["kmeans", "kmeans_plus_plus", "nearest_centroid"]
