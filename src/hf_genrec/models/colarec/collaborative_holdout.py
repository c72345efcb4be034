"""Recommendation supervision that the collaborative start has not already seen (``rec_targets: held_out``).

LightGCN is trained on every training interaction, so a model started from its vectors meets, on its
training rows, targets whose edge to the user those vectors were fitted to: on Phones the mean of a
user's other items ranks a held-out *training* item 46% better (N@20) than a validation item,
though the split makes the two exchangeable (``bench/colarec_training_pair_leak.py``).  The model
learns to trust a signal that validation and test never have.

Here up to ``per_user`` training items per user, never more than ``max_share`` of the user's distinct
items, are kept out of a second LightGCN, the model starts from that LightGCN's vectors, and the
recommendation task trains on exactly those held-out items (history: the user's other training
items), as validation asks: predict an edge the collaborative vectors never saw.  Every held-out edge
also weakens the start, most for short histories: on Phones, holding one item out of every history
(all have three or more) costs the start's LightGCN 17% of its validation N@20, holding it out of
histories of four or more (``max_share`` 0.25) 6%, and the model trained on the fewer rows is the
better one (BENCHMARKS.md).  The counts follow each history's length, not the dataset.  The GIDs
still come from the LightGCN of every interaction.

The held-out start misses those edges at ranking time too, where nothing needs keeping out: every
training edge is history there.  ``cross_fitted_tables`` closes that gap by cross-fitting: the model
ranks with the LightGCN of every training edge (the one the GIDs come from), and each fold of the
held-out users trains against the same LightGCN (seed, epochs, batches) withholding that fold's
held-out edges.  A training target's edge is unseen by the rows it is scored against, and the model,
trained against several such tables, learns a map from a history's rows to the next item's that does
not lean on one table's particular rows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from datasets import Dataset

from ...data import RecDataset
from ...errors import InvalidInputError
from ...item_tokenizers.colarec_gids import train_protocol_lightgcn
from ...item_tokenizers.lightgcn import LightGCNResult


def held_out_training_items(
    train_sequences: dict[int, list[int]], seed: int, per_user: int = 1, max_share: float = 0.5
) -> dict[int, frozenset[int]]:
    """``min(per_user, floor(max_share * n))`` of each user's ``n`` distinct training items, drawn with ``seed``.

    Users whose count is 0 keep every item and are left out: {user_id: held-out items}.
    """
    if per_user < 1 or not 0 < max_share < 1:
        raise InvalidInputError(f"per_user must be at least 1 and max_share in (0, 1), got {per_user} and {max_share}")
    rng = random.Random(seed)
    held = {}
    for user, items in sorted(train_sequences.items()):
        distinct = list(dict.fromkeys(items))  # history order: a one-item draw is the rng.choice(items) of before
        count = min(per_user, math.floor(max_share * len(distinct) + 1e-9))
        if count:
            held[user] = frozenset(rng.sample(distinct, count))
    return held


def held_out_lightgcn(
    dataset: RecDataset, held_out: dict[int, frozenset[int]], item_ids: list[int], *, dim: int, epochs: int, seed: int
) -> LightGCNResult:
    """LightGCN on the training interactions without the ``held_out`` ones (users numbered as the full one's)."""
    interactions = dataset.train_interactions()
    users = sorted({user for user, _ in interactions})
    kept = [(user, item) for user, item in interactions if item not in held_out.get(user, ())]
    result, _, _, _ = train_protocol_lightgcn(dataset, kept, item_ids, users, dim=dim, epochs=epochs, seed=seed)
    return result


@dataclass
class CrossFittedTables:
    """``item_tables[0]``: every training edge; ``item_tables[k]``: every edge but fold ``k``'s held-out ones."""

    item_tables: torch.Tensor  # [folds + 1, items, dim], rows in the semantic-ID table's order
    fold_of_user: dict[int, int]  # held-out user -> fold in 1..folds


def cross_fitted_tables(
    dataset: RecDataset, held_out: dict[int, frozenset[int]], full: LightGCNResult, item_ids: list[int], *,
    folds: int, dim: int, epochs: int, seed: int,
) -> CrossFittedTables:
    """Table 0: ``full``, the LightGCN of every training edge; table ``k``: LightGCN with ``full``'s settings
    (``dim``, ``epochs``, ``seed``: its batches) withholding the held-out edges of fold ``k``, for each of
    ``folds`` folds of the held-out users (drawn with ``seed``)."""
    if folds < 2:
        raise InvalidInputError(f"cross-fitting needs at least 2 folds, got {folds}")
    order = sorted(held_out)
    random.Random(seed).shuffle(order)
    fold_of_user = {user: 1 + n % folds for n, user in enumerate(order)}
    interactions = dataset.train_interactions()
    tables = [full.item_embeddings]
    for fold in range(1, folds + 1):
        withheld = [(user, item) for user, items in held_out.items() if fold_of_user[user] == fold for item in items]
        result, _, _, _ = train_protocol_lightgcn(dataset, interactions, item_ids, dim=dim, epochs=epochs, seed=seed,
                                                  withheld=withheld)
        tables.append(result.item_embeddings)
    return CrossFittedTables(torch.stack(tables), fold_of_user)


def held_out_rows(rows: Dataset, held_out: dict[int, frozenset[int]]) -> Dataset:
    """The training rows ``{user_id, history, target}`` whose target is one of the user's held-out items."""
    keep = [n for n, (user, target) in enumerate(zip(rows["user_id"], rows["target"]))
            if target in held_out.get(user, ())]
    return rows.select(keep)


__all__ = ["CrossFittedTables", "cross_fitted_tables", "held_out_lightgcn", "held_out_rows", "held_out_training_items"]
