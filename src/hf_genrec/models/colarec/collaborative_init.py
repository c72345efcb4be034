"""Start ColaRec from the collaborative vectors its GIDs were built from (LightGCN's).

The GIDs come from LightGCN item vectors, and LightGCN is trained anyway; a model that starts from
random atom-item, user and code embeddings spends its first epoch re-learning what those vectors
already say.  Here they seed the model instead:

* atom-item rows (the encoder's item slots) <- the item's vector;
* user rows (the indexing inputs' user slots) <- the user's vector;
* node-scoped code rows (``code_embedding_scope: node``) <- the mean vector of the items under
  each node (the last level's nodes are the items: their own vectors).

Vectors of LightGCN's width ``k`` reach ``d_model`` by a map that keeps dot products: a random
orthonormal one when ``d_model >= k``, the top ``d_model`` principal directions otherwise.  Every
table is then scaled to the root-mean-square of the model's own embedding init (std
``initializer_factor``), so the T5 stacks see inputs of the size they were initialised for.
"""

from __future__ import annotations

import torch

from ...errors import CheckpointMismatchError
from .modeling_colarec import ColaRecForGenerativeRecommendation


def projection_to(width: int, vectors: torch.Tensor, seed: int) -> torch.Tensor:
    """[k, width] map that keeps dot products (orthonormal rows) or, narrowing, keeps the most variance."""
    k = vectors.shape[1]
    if width == k:
        return torch.eye(k)
    if width > k:
        generator = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(width, k, generator=generator))  # [width, k], orthonormal columns
        return q.T.contiguous()
    _, _, vh = torch.linalg.svd(vectors, full_matrices=False)
    return vh[:width].T.contiguous()


def _rms_scaled(table: torch.Tensor, target: float) -> torch.Tensor:
    rms = table.pow(2).mean().sqrt().clamp(min=1e-12)
    return table * (target / rms)


@torch.no_grad()
def init_from_collaborative_vectors(
    model: ColaRecForGenerativeRecommendation,
    item_vectors: torch.Tensor,
    user_vectors: torch.Tensor | None = None,
    item_codes: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Overwrite atom-item, user and (node-scoped) code embeddings with projected ``item_vectors`` / ``user_vectors``.
    Returns the [k, d_model] map applied to the vectors (projection and scale), for other tables of the same space.

    Rows of ``item_vectors`` follow the model's item rows (the semantic-ID table's order), rows of
    ``user_vectors`` its user rows (sorted training users, as LightGCN numbers them);
    ``item_codes`` [items, levels] are the items' GIDs (needed for node-scoped codes).
    """
    config = model.config
    item_vectors = torch.as_tensor(item_vectors, dtype=torch.float32)
    if item_vectors.dim() != 2 or item_vectors.shape[0] != config.num_items:
        raise CheckpointMismatchError(
            f"collaborative item vectors have shape {tuple(item_vectors.shape)}; the model has {config.num_items} items"
        )
    if user_vectors is not None:
        user_vectors = torch.as_tensor(user_vectors, dtype=torch.float32)
        if user_vectors.shape != (config.num_users, item_vectors.shape[1]):
            raise CheckpointMismatchError(
                f"collaborative user vectors have shape {tuple(user_vectors.shape)}; the model has {config.num_users} "
                f"users and the item vectors width {item_vectors.shape[1]}"
            )
    target = float(config.initializer_factor)
    stacked = item_vectors if user_vectors is None else torch.cat([item_vectors, user_vectors])
    projection = projection_to(config.d_model, stacked, seed)
    items = item_vectors @ projection
    scale = target / items.pow(2).mean().sqrt().clamp(min=1e-12)  # one factor: item and user dot products stay comparable
    encoder = model.encoder
    encoder.item_embeddings.weight.copy_(items * scale)
    if user_vectors is not None:
        encoder.user_embeddings.weight.copy_(user_vectors @ projection * scale)
    if config.node_scoped_codes:
        if item_codes is None:
            raise CheckpointMismatchError("node-scoped code embeddings are seeded from the items' GIDs: pass item_codes")
        leaf_nodes = model.prefix_nodes(torch.as_tensor(item_codes, dtype=torch.long))  # [items, levels]
        if (leaf_nodes < 0).any() or not torch.equal(leaf_nodes[:, -1], torch.arange(config.num_items)):
            raise CheckpointMismatchError("item_codes do not match the model's GID tree (set_gid_tree with the same table)")
        for level, table in enumerate(model.code_embeddings):
            sums = torch.zeros(table.num_embeddings, config.d_model)
            counts = torch.zeros(table.num_embeddings)
            sums.index_add_(0, leaf_nodes[:, level], items)
            counts.index_add_(0, leaf_nodes[:, level], torch.ones(len(items)))
            table.weight.copy_(_rms_scaled(sums / counts.clamp(min=1)[:, None], target))
    return projection * scale


__all__ = ["init_from_collaborative_vectors", "projection_to"]
