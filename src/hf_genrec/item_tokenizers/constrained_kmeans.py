"""ColaRec's item GIDs: hierarchical k-means with a size cap on every cluster.

With ``levels = l`` and ``clusters = K``, a cluster at level ``t`` (1-based, ``t < l``) holds at
most ``K^(l-t)`` items, so every leaf cluster holds at most ``K`` items and the last code is simply
the item's index inside its leaf.  Every item therefore gets a distinct path by construction,
without TIGER's extra disambiguation level.  The capacity is enforced in the assignment step of
Lloyd's algorithm (seeded by the package's k-means++): items claim their nearest non-full centroid, the items with the most to lose
(largest gap between their best and second-best centroid) first.  Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidInputError
from ..semantic_ids.id_table import SemanticIdTable
from .kmeans import kmeans_plus_plus

METHOD = "colarec-kmeans"


def _sq_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d, 0.0)


def capacity_assign(distances: np.ndarray, max_size: int) -> np.ndarray:
    """Assign each row to a column, no column taking more than ``max_size`` rows.

    Rows whose best column beats their second best by the widest margin choose first; each row
    takes its nearest column that still has room.  Equals the plain argmin when that fits.
    """
    n, k = distances.shape
    if n > k * max_size:
        raise InvalidInputError(f"{n} points cannot fit {k} clusters of at most {max_size}")
    nearest = distances.argmin(1)
    if np.bincount(nearest, minlength=k).max() <= max_size:
        return nearest
    preference = np.argsort(distances, axis=1, kind="stable")
    if k > 1:
        part = np.partition(distances, 1, axis=1)
        regret = part[:, 1] - part[:, 0]
    else:
        regret = np.zeros(n)
    order = np.argsort(-regret, kind="stable")
    room = np.full(k, max_size, dtype=np.int64)
    labels = np.empty(n, dtype=np.int64)
    for row in order.tolist():
        for col in preference[row].tolist():
            if room[col] > 0:
                room[col] -= 1
                labels[row] = col
                break
    return labels


def constrained_kmeans(
    x: np.ndarray, n_clusters: int, max_size: int, seed: int | np.random.Generator = 0, max_iter: int = 50
) -> np.ndarray:
    """Lloyd's k-means whose every cluster holds at most ``max_size`` points; returns labels [n]."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n_clusters <= 0 or max_size <= 0:
        raise InvalidInputError(f"n_clusters and max_size must be positive (got {n_clusters}, {max_size})")
    if n > n_clusters * max_size:
        raise InvalidInputError(f"{n} points cannot fit {n_clusters} clusters of at most {max_size}")
    if n_clusters >= n:
        return np.arange(n, dtype=np.int64)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    centroids = kmeans_plus_plus(torch.from_numpy(x), n_clusters, generator).numpy()
    labels = None
    for _ in range(max_iter):
        new = capacity_assign(_sq_distances(x, centroids), max_size)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        counts = np.bincount(labels, minlength=n_clusters)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]  # an empty cluster keeps its centroid
    return labels


def fewest_levels(num_items: int, clusters: int) -> int:
    """The fewest levels whose ``clusters ** levels`` distinct paths hold ``num_items`` items (at least 2: a
    prefix to decode and a leaf index)."""
    if clusters < 2:
        raise InvalidInputError(f"need clusters >= 2, got {clusters}")
    levels, capacity = 2, clusters**2
    while capacity < num_items:
        levels, capacity = levels + 1, capacity * clusters
    return levels


def hierarchical_constrained_kmeans(
    embeddings: np.ndarray, levels: int = 3, clusters: int = 32, seed: int = 0, max_iter: int = 50
) -> np.ndarray:
    """Codes [N, levels]: nested size-capped k-means, the last code the index inside the leaf."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise InvalidInputError(f"item embeddings must be a non-empty [items, dim] array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidInputError("item embeddings contain NaN or infinite values")
    if levels < 1 or clusters < 2:
        raise InvalidInputError(f"need levels >= 1 and clusters >= 2 (got {levels}, {clusters})")
    if len(x) > clusters**levels:
        raise InvalidInputError(f"{len(x)} items do not fit {levels} levels of {clusters} codes ({clusters ** levels} IDs)")
    codes = np.zeros((len(x), levels), dtype=np.int64)

    def split(rows: np.ndarray, level: int, path: tuple[int, ...]) -> None:
        if level == levels - 1:
            codes[rows, level] = np.arange(len(rows))
            return
        capacity = clusters ** (levels - 1 - level)
        k = min(clusters, len(rows))
        rng = np.random.default_rng([seed, level, *path])  # path-keyed: independent of traversal order
        labels = constrained_kmeans(x[rows], k, capacity, rng, max_iter)
        codes[rows, level] = labels
        for label in np.unique(labels).tolist():
            split(rows[labels == label], level + 1, path + (label,))

    split(np.arange(len(x)), 0, ())
    return codes


def colarec_semantic_ids(
    item_ids: list[int],
    embeddings: np.ndarray,
    levels: int = 3,
    clusters: int = 32,
    seed: int = 0,
    max_iter: int = 50,
) -> SemanticIdTable:
    """ColaRec GIDs for ``item_ids`` (row ``r`` of ``embeddings`` belongs to ``item_ids[r]``)."""
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    if len(item_ids) != len(embeddings):
        raise InvalidInputError(f"{len(item_ids)} item ids but {len(embeddings)} embedding rows")
    codes = hierarchical_constrained_kmeans(embeddings, levels, clusters, seed, max_iter)
    if len({tuple(row) for row in codes.tolist()}) != len(codes):  # guaranteed by the capacities
        raise AssertionError("constrained k-means produced a duplicate GID")
    return SemanticIdTable(item_ids, codes, [clusters] * levels, content_levels=levels, method=METHOD)


__all__ = ["capacity_assign", "colarec_semantic_ids", "constrained_kmeans", "fewest_levels", "hierarchical_constrained_kmeans"]
