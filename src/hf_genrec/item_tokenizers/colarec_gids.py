"""ColaRec's item GIDs: LightGCN on the training interactions, then size-capped hierarchical k-means.

LightGCN is trained on training interactions only, selected on validation, and its own ranking
(dot product, under the dataset's protocol: training items excluded under ColaRec's, nothing under
leave-one-out) is reported beside the GIDs (``lightgcn_results.json``),
since a generative model built on these IDs should beat the embeddings it is built from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..data import RecDataset
from ..io_utils import atomic_write_json
from ..semantic_ids.id_table import SemanticIdTable
from .constrained_kmeans import colarec_semantic_ids
from .lightgcn import evaluate_ranking, index_interactions, train_lightgcn

logger = logging.getLogger(__name__)

LIGHTGCN_FILE = "lightgcn.safetensors"
LIGHTGCN_RESULTS_FILE = "lightgcn_results.json"
LIGHTGCN_KS = (5, 10, 20)


def build_colarec_gids(
    dataset: RecDataset,
    output_dir: str | Path,
    *,
    levels: int = 3,
    clusters: int = 32,
    lightgcn_dim: int = 64,
    lightgcn_epochs: int = 20,
    seed: int = 0,
) -> SemanticIdTable:
    """Train LightGCN, report its own ranking, cluster items into GIDs; saves all three into ``output_dir``."""
    output_dir = Path(output_dir)
    item_ids = dataset.catalogue.item_ids
    train_pairs, user_ids, _ = index_interactions(dataset.train_interactions(), item_ids=item_ids)
    known_users = set(user_ids)
    held_out, excluded = {}, {}
    splits = dataset.splits()
    for split in ("validation", "test"):
        rows = splits[split]
        pairs = [(u, i) for u, targets in zip(rows["user_id"], rows["targets"]) if u in known_users for i in targets]
        held_out[split], _, _ = index_interactions(pairs, item_ids=item_ids, user_ids=user_ids)
        # the protocol's own exclusions (ColaRec: the training items; leave-one-out: none)
        removed = [(u, i) for u, items in zip(rows["user_id"], rows["exclude"]) if u in known_users for i in items]
        excluded[split], _, _ = index_interactions(removed, item_ids=item_ids, user_ids=user_ids)
    result = train_lightgcn(
        train_pairs, len(user_ids), len(item_ids), dim=lightgcn_dim, epochs=lightgcn_epochs,
        seed=seed, eval_interactions=held_out["validation"], exclude_training=len(excluded["validation"]) > 0,
    )
    report = {
        "model": "lightgcn (dot product)",
        "best_epoch": result.best_epoch,
        "history": result.history,
        **{f"{split}_{k}": v for split, pairs in held_out.items()
           for k, v in evaluate_ranking(result.user_embeddings, result.item_embeddings, excluded[split], pairs, LIGHTGCN_KS).items()},
        "protocol": dataset.describe_protocol(),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save(output_dir / LIGHTGCN_FILE)
    atomic_write_json(output_dir / LIGHTGCN_RESULTS_FILE, report, indent=2)
    logger.info("LightGCN: %s", {k: v for k, v in report.items() if k.startswith(("validation", "test"))})
    table = colarec_semantic_ids(item_ids, result.item_embeddings, levels=levels, clusters=clusters, seed=seed)
    table.save(output_dir)
    return table


__all__ = ["LIGHTGCN_FILE", "LIGHTGCN_RESULTS_FILE", "build_colarec_gids"]
