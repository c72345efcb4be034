"""ColaRec's item GIDs: LightGCN on the training interactions, then size-capped hierarchical k-means.

LightGCN is trained on training interactions only, selected on validation, and its own ranking
(dot product, under the dataset's protocol: training items excluded under ColaRec's, nothing under
leave-one-out) is reported beside the GIDs (``lightgcn_results.json``),
since a generative model built on these IDs should beat the embeddings it is built from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data import RecDataset
from ..io_utils import atomic_write_json
from ..semantic_ids.id_table import SemanticIdTable
from .constrained_kmeans import colarec_semantic_ids
from .lightgcn import LightGCNResult, evaluate_ranking, index_interactions, train_lightgcn

logger = logging.getLogger(__name__)

LIGHTGCN_FILE = "lightgcn.safetensors"
LIGHTGCN_RESULTS_FILE = "lightgcn_results.json"
LIGHTGCN_KS = (5, 10, 20)


def item_rows_by_user(table: SemanticIdTable, pairs) -> dict[int, list[int]]:
    """``(user_id, item_id)`` pairs grouped by user, items as ``table``'s rows (the LightGCN vectors' order)."""
    pairs = list(pairs)
    grouped: dict[int, list[int]] = {}
    for (user, _), row in zip(pairs, table.rows_of([item for _, item in pairs]).tolist()):
        grouped.setdefault(int(user), []).append(int(row))
    return grouped


def train_protocol_lightgcn(
    dataset: RecDataset,
    train_pairs: list[tuple[int, int]],
    item_ids: list[int],
    user_ids: list[int] | None = None,
    *,
    dim: int = 64,
    epochs: int = 20,
    seed: int = 0,
    withheld: list[tuple[int, int]] | None = None,
) -> tuple[LightGCNResult, list[int], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """LightGCN on raw ``(user_id, item_id)`` ``train_pairs``, its epoch selected on the validation split
    under the dataset's protocol.  Returns the result, its user ids (rows), and the validation / test
    target pairs and the protocol's exclusions, indexed as its rows.  ``withheld`` raw pairs among
    ``train_pairs`` stay out of its graph but not out of its batch draws (``train_lightgcn``)."""
    pairs, user_ids, _ = index_interactions(train_pairs, item_ids=item_ids, user_ids=user_ids)
    known_users = set(user_ids)
    held_out, excluded = {}, {}
    splits = dataset.splits()
    for split in ("validation", "test"):
        rows = splits[split]
        targets = [(u, i) for u, items in zip(rows["user_id"], rows["targets"]) if u in known_users for i in items]
        held_out[split], _, _ = index_interactions(targets, item_ids=item_ids, user_ids=user_ids)
        # the protocol's own exclusions (ColaRec: the training items; leave-one-out: none)
        removed = [(u, i) for u, items in zip(rows["user_id"], rows["exclude"]) if u in known_users for i in items]
        excluded[split], _, _ = index_interactions(removed, item_ids=item_ids, user_ids=user_ids)
    withheld_rows = index_interactions(withheld, item_ids=item_ids, user_ids=user_ids)[0] if withheld else None
    result = train_lightgcn(
        pairs, len(user_ids), len(item_ids), dim=dim, epochs=epochs,
        seed=seed, eval_interactions=held_out["validation"], eval_excluded=excluded["validation"], withheld=withheld_rows,
    )
    return result, user_ids, held_out, excluded


def build_colarec_gids(
    dataset: RecDataset,
    output_dir: str | Path,
    *,
    levels: int = 3,
    clusters: int = 32,
    lightgcn_dim: int = 64,
    lightgcn_epochs: int = 20,
    seed: int = 0,
    score_test: bool = True,
) -> SemanticIdTable:
    """Train LightGCN, report its own ranking, cluster items into GIDs; saves all three into ``output_dir``.

    ``score_test=False`` (a training run with ``test_at_end: false``) reports validation only, so a run
    that explores on validation never reads the test split, not even through its item tokenizer.
    """
    output_dir = Path(output_dir)
    result, _, held_out, excluded = train_protocol_lightgcn(
        dataset, dataset.train_interactions(), dataset.catalogue.item_ids, dim=lightgcn_dim, epochs=lightgcn_epochs, seed=seed
    )
    report = {
        "model": "lightgcn (dot product)",
        "best_epoch": result.best_epoch,
        "history": result.history,
        **{f"{split}_{k}": v for split, pairs in held_out.items() if score_test or split != "test"
           for k, v in evaluate_ranking(result.user_embeddings, result.item_embeddings, excluded[split], pairs, LIGHTGCN_KS).items()},
        "protocol": dataset.describe_protocol(),
        **({} if score_test else {"test": "not read (the training run's test_at_end is false)"}),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save(output_dir / LIGHTGCN_FILE)
    atomic_write_json(output_dir / LIGHTGCN_RESULTS_FILE, report, indent=2)
    logger.info("LightGCN: %s", {k: v for k, v in report.items() if k.startswith(("validation", "test"))})
    table = colarec_semantic_ids(dataset.catalogue.item_ids, result.item_embeddings, levels=levels, clusters=clusters, seed=seed)
    table.save(output_dir)
    return table


__all__ = ["LIGHTGCN_FILE", "LIGHTGCN_RESULTS_FILE", "build_colarec_gids", "item_rows_by_user", "train_protocol_lightgcn"]
