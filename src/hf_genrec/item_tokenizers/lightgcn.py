"""LightGCN (He et al., 2020) on the user-item training graph: ColaRec's collaborative item vectors.

The graph propagation is a torch sparse matrix product with the symmetrically normalised
adjacency ``D^-1/2 A D^-1/2``; the final embedding of a node is the mean of its layer-0..L
embeddings.  Training is BPR with one sampled negative per training interaction, the negative
drawn uniformly from the items the user never interacted with *in training*.  Only training
interactions ever enter the graph or the sampler; validation pairs are used only to report
Recall@K / NDCG@K of the full dot-product ranking (training items excluded), the ColaRec protocol.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataFormatError, InvalidInputError
from ..evaluation.metrics import pad_lists, ranking_metrics
from ..io_utils import atomic_save_tensors

logger = logging.getLogger(__name__)


@dataclass
class LightGCNResult:
    """Final (layer-averaged) embeddings and the training curve.

    ``history`` holds one dict per logged epoch: ``epoch``, ``loss`` and, when validation pairs
    were given, ``recall@K`` / ``ndcg@K``.  With validation pairs the embeddings are those of the
    best validation Recall@K epoch (``best_epoch``); otherwise those of the last epoch.
    """

    user_embeddings: torch.Tensor
    item_embeddings: torch.Tensor
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0

    def save(self, path: str | os.PathLike) -> None:
        """Safetensors file with ``user_embeddings`` and ``item_embeddings`` (written atomically)."""
        meta = {"best_epoch": str(self.best_epoch), "seconds": f"{self.seconds:.1f}"}
        atomic_save_tensors(path, {"user_embeddings": self.user_embeddings, "item_embeddings": self.item_embeddings}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LightGCNResult":
        from safetensors import safe_open

        if not os.path.exists(path):
            raise DataFormatError("LightGCN embedding file not found", path=path)
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            if not {"user_embeddings", "item_embeddings"} <= keys:
                raise DataFormatError(f"expected user_embeddings and item_embeddings, found {sorted(keys)}", path=path)
            meta = f.metadata() or {}
            best = meta.get("best_epoch")
            return cls(
                f.get_tensor("user_embeddings"),
                f.get_tensor("item_embeddings"),
                best_epoch=int(best) if best not in (None, "None") else None,
                seconds=float(meta.get("seconds", 0.0)),
            )


# ---------------------------------------------------------------------------------------- helpers
def index_interactions(
    pairs: Sequence[tuple[int, int]], item_ids: Sequence[int] | None = None, user_ids: Sequence[int] | None = None
) -> tuple[np.ndarray, list[int], list[int]]:
    """Map raw (user_id, item_id) pairs to 0-based (user_row, item_row) indices.

    ``item_ids`` fixes the item order (pass the catalogue's or the semantic-ID table's so that
    row ``r`` of the item embeddings is ``item_ids[r]``); users default to sorted unique ids.
    Returns ``(index_pairs [N, 2], user_ids, item_ids)``.
    """
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    user_ids = sorted(set(arr[:, 0].tolist())) if user_ids is None else [int(u) for u in user_ids]
    item_ids = sorted(set(arr[:, 1].tolist())) if item_ids is None else [int(i) for i in item_ids]
    user_row = {u: r for r, u in enumerate(user_ids)}
    item_row = {i: r for r, i in enumerate(item_ids)}
    out = np.empty_like(arr)
    for n, (u, i) in enumerate(arr.tolist()):
        if u not in user_row:
            raise InvalidInputError(f"interaction {n}: user {u} is not among the {len(user_ids)} known users")
        if i not in item_row:
            raise InvalidInputError(f"interaction {n}: item {i} is not among the {len(item_ids)} known items")
        out[n] = (user_row[u], item_row[i])
    return out, user_ids, item_ids


def _check_pairs(pairs, num_users: int, num_items: int, what: str) -> np.ndarray:
    arr = np.asarray(pairs, dtype=np.int64)
    if arr.size == 0:
        raise InvalidInputError(f"{what}: no interactions given")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInputError(f"{what}: expected (user, item) pairs, got an array of shape {arr.shape}")
    if arr.min() < 0 or arr[:, 0].max() >= num_users or arr[:, 1].max() >= num_items:
        raise InvalidInputError(
            f"{what}: indices must lie in [0, {num_users}) for users and [0, {num_items}) for items "
            "(map raw ids with index_interactions first)"
        )
    return arr


def normalized_adjacency(pairs: np.ndarray, num_users: int, num_items: int) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the bipartite graph as a sparse CSR tensor; users first, then items."""
    pairs = np.unique(pairs, axis=0)
    users = torch.as_tensor(pairs[:, 0])
    items = torch.as_tensor(pairs[:, 1]) + num_users
    rows = torch.cat([users, items])
    cols = torch.cat([items, users])
    n = num_users + num_items
    degree = torch.bincount(rows, minlength=n).float()
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt[torch.isinf(inv_sqrt)] = 0.0
    values = inv_sqrt[rows] * inv_sqrt[cols]
    adj = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, n), check_invariants=True).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR @ dense is what we need here
        warnings.simplefilter("ignore", UserWarning)
        return adj.to_sparse_csr()


class _SymmetricSparseMatmul(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj``: the gradient is ``adj @ grad`` again.

    Several times faster on CPU than autograd through ``torch.sparse`` (which transposes the
    CSR matrix on every backward pass).
    """

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.adj @ grad


def propagate(adj: torch.Tensor, ego: torch.Tensor, layers: int) -> torch.Tensor:
    """Mean of the layer-0..``layers`` embeddings (LightGCN's layer combination); ``adj`` symmetric."""
    total = ego
    current = ego
    for _ in range(layers):
        current = _SymmetricSparseMatmul.apply(adj, current)
        total = total + current
    return total / (layers + 1)


class _NegativeSampler:
    """Uniform items a user never saw in training (rejection sampling against sorted pair keys)."""

    def __init__(self, pairs: np.ndarray, num_items: int, rng: np.random.Generator):
        self.num_items = num_items
        self.keys = np.unique(pairs[:, 0] * num_items + pairs[:, 1])
        self.rng = rng
        counts = np.bincount(pairs[:, 0])
        if (counts >= num_items).any():
            raise InvalidInputError("a user interacted with every item: no negative can be sampled")

    def seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        pos = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return self.keys[pos] == keys

    def __call__(self, users: np.ndarray) -> np.ndarray:
        items = self.rng.integers(0, self.num_items, size=len(users))
        bad = self.seen(users, items)
        while bad.any():
            items[bad] = self.rng.integers(0, self.num_items, size=int(bad.sum()))
            bad[bad] = self.seen(users[bad], items[bad])
        return items


def _kept_pairs(pairs: np.ndarray, withheld, num_users: int, num_items: int) -> np.ndarray | None:
    """Mask over the sorted unique ``pairs`` of those not ``withheld`` (None when nothing is withheld)."""
    if withheld is None or len(withheld) == 0:
        return None
    held = np.unique(_check_pairs(withheld, num_users, num_items, "withheld interactions"), axis=0)
    keys, held_keys = pairs[:, 0] * num_items + pairs[:, 1], held[:, 0] * num_items + held[:, 1]
    missing = ~np.isin(held_keys, keys)
    if missing.any():
        user, item = held[missing][0]
        raise InvalidInputError(f"withheld pair (user {user}, item {item}) is not among the training interactions")
    return ~np.isin(keys, held_keys)


@torch.no_grad()
def evaluate_ranking(
    user_embeddings: torch.Tensor,
    item_embeddings: torch.Tensor,
    excluded_pairs: np.ndarray,
    eval_pairs: np.ndarray,
    ks: Sequence[int] = (20,),
    chunk_size: int = 4096,
) -> dict[str, float]:
    """Recall@K / NDCG@K of the dot-product ranking of all items, without each user's ``excluded_pairs``
    (the protocol's exclusions: the training items under ColaRec's protocol, none under leave-one-out)."""
    eval_pairs = np.asarray(eval_pairs, dtype=np.int64)
    targets: dict[int, list[int]] = {}
    for u, i in eval_pairs.tolist():
        targets.setdefault(u, []).append(i)
    seen: dict[int, list[int]] = {}
    for u, i in np.asarray(excluded_pairs).reshape(-1, 2).tolist():
        seen.setdefault(u, []).append(i)
    users = sorted(targets)
    max_k = max(ks)
    ranked = []
    for start in range(0, len(users), chunk_size):
        chunk = users[start : start + chunk_size]
        scores = user_embeddings[chunk] @ item_embeddings.T
        rows, cols = [], []
        for r, u in enumerate(chunk):
            items = seen.get(u, [])
            rows.extend([r] * len(items))
            cols.extend(items)
        if rows:
            scores[torch.as_tensor(rows), torch.as_tensor(cols)] = -math.inf
        ranked.append(scores.topk(max_k, dim=1).indices)
    return ranking_metrics(torch.cat(ranked), pad_lists([targets[u] for u in users]), ks=ks)


# ---------------------------------------------------------------------------------------- training
def train_lightgcn(
    interactions: Sequence[tuple[int, int]] | np.ndarray,
    num_users: int,
    num_items: int,
    dim: int = 64,
    layers: int = 3,
    epochs: int = 30,
    lr: float = 5e-3,
    batch_size: int = 4096,
    weight_decay: float = 1e-4,
    seed: int = 0,
    eval_interactions: Sequence[tuple[int, int]] | np.ndarray | None = None,
    eval_every: int = 5,
    eval_k: int = 20,
    progress: Callable[[dict], None] | None = None,
    eval_excluded: Sequence[tuple[int, int]] | np.ndarray | None = None,
    withheld: Sequence[tuple[int, int]] | np.ndarray | None = None,
) -> LightGCNResult:
    """Train LightGCN with BPR on 0-based ``(user, item)`` training pairs (see ``index_interactions``).

    ``weight_decay`` is LightGCN's L2 penalty on the layer-0 embeddings of each batch.  With
    ``eval_interactions`` the Recall/NDCG@``eval_k`` curve is recorded every ``eval_every``
    epochs, with ``eval_excluded`` left out of the ranking (the protocol's exclusions; default: the
    training pairs), and the best epoch's embeddings are returned.  Deterministic for a given ``seed``
    and thread count.

    ``withheld`` (pairs among ``interactions``) are kept out of the graph and skipped in the BPR batches,
    which are still drawn over every interaction, negatives included: a run that withholds some edges
    follows the batches of the run that does not, so the two differ by those edges rather than by
    sampling noise (ColaRec's cross-fitted item tables).
    """
    if dim <= 0 or layers < 0 or epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise InvalidInputError(
            f"train_lightgcn: dim, epochs, batch_size, lr must be positive and layers >= 0 "
            f"(got dim={dim}, layers={layers}, epochs={epochs}, batch_size={batch_size}, lr={lr})"
        )
    pairs = _check_pairs(interactions, num_users, num_items, "training interactions")
    pairs = np.unique(pairs, axis=0)
    keep = _kept_pairs(pairs, withheld, num_users, num_items)
    eval_pairs = None
    if eval_interactions is not None:
        eval_pairs = _check_pairs(eval_interactions, num_users, num_items, "evaluation interactions")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    adj = normalized_adjacency(pairs if keep is None else pairs[keep], num_users, num_items)
    ego = torch.nn.Parameter(torch.randn(num_users + num_items, dim, generator=generator) * 0.1)
    optimizer = torch.optim.Adam([ego], lr=lr)
    sampler = _NegativeSampler(pairs, num_items, rng)

    history: list[dict] = []
    best = (-1.0, None, None)  # recall, epoch, final embeddings
    final = None
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(pairs))
        total = 0.0
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = pairs[chosen]
            negatives = sampler(batch[:, 0])
            if keep is not None:
                batch, negatives = batch[keep[chosen]], negatives[keep[chosen]]
                if not len(batch):
                    continue
            users, items = batch[:, 0], batch[:, 1]
            out = propagate(adj, ego, layers)
            u = torch.as_tensor(users)
            i = torch.as_tensor(items) + num_users
            j = torch.as_tensor(negatives) + num_users
            eu, ei, ej = out[u], out[i], out[j]
            bpr = -F.logsigmoid((eu * ei).sum(-1) - (eu * ej).sum(-1)).mean()
            reg = (ego[u].pow(2).sum() + ego[i].pow(2).sum() + ego[j].pow(2).sum()) / (2 * len(batch))
            loss = bpr + weight_decay * reg
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        record = {"epoch": epoch, "loss": total / len(pairs)}
        want_eval = eval_pairs is not None and (epoch % eval_every == 0 or epoch == epochs)
        if want_eval or epoch == epochs:
            with torch.no_grad():
                final = propagate(adj, ego.detach(), layers)
        if want_eval:
            excluded = pairs if eval_excluded is None else eval_excluded
            metrics = evaluate_ranking(final[:num_users], final[num_users:], excluded, eval_pairs, ks=(eval_k,))
            record.update(metrics)
            if metrics[f"recall@{eval_k}"] > best[0]:
                best = (metrics[f"recall@{eval_k}"], epoch, final.clone())
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        logger.info("lightgcn %s", record)
        if progress is not None:
            progress(record)
    best_epoch = None
    if best[1] is not None:
        best_epoch, final = best[1], best[2]
    return LightGCNResult(
        user_embeddings=final[:num_users].clone(),
        item_embeddings=final[num_users:].clone(),
        history=history,
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
    )


__all__ = ["LightGCNResult", "evaluate_ranking", "index_interactions", "normalized_adjacency", "propagate", "train_lightgcn"]
