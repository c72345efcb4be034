"""Recommendation supervision that the collaborative start has not already seen (``rec_targets: held_out``).

LightGCN is trained on every training interaction, so a model started from its vectors meets, on its
training rows, targets whose edge to the user those vectors were fitted to: on Phones the mean of a
user's other items ranks a held-out *training* item 46% better (N@20) than a validation item,
though the split makes the two exchangeable (``bench/colarec_training_pair_leak.py``).  The model
learns to trust a signal that validation and test never have.

Here one training item per user (of those with two or more) is kept out of a second LightGCN, the
model starts from that LightGCN's vectors, and the recommendation task trains on exactly those
held-out items (history: the user's other training items), as validation asks: predict an edge the
collaborative vectors never saw.  The GIDs still come from the LightGCN of every interaction.
"""

from __future__ import annotations

import random

from datasets import Dataset

from ...data import RecDataset
from ...item_tokenizers.colarec_gids import train_protocol_lightgcn
from ...item_tokenizers.lightgcn import LightGCNResult


def held_out_training_items(train_sequences: dict[int, list[int]], seed: int) -> dict[int, int]:
    """One training item per user with at least two, drawn with ``seed``: {user_id: item_id}."""
    rng = random.Random(seed)
    return {user: rng.choice(items) for user, items in sorted(train_sequences.items()) if len(set(items)) >= 2}


def held_out_lightgcn(
    dataset: RecDataset, held_out: dict[int, int], item_ids: list[int], *, dim: int, epochs: int, seed: int
) -> LightGCNResult:
    """LightGCN on the training interactions without the ``held_out`` ones (users numbered as the full one's)."""
    interactions = dataset.train_interactions()
    users = sorted({user for user, _ in interactions})
    kept = [(user, item) for user, item in interactions if held_out.get(user) != item]
    result, _, _, _ = train_protocol_lightgcn(dataset, kept, item_ids, users, dim=dim, epochs=epochs, seed=seed)
    return result


def held_out_rows(rows: Dataset, held_out: dict[int, int]) -> Dataset:
    """The training rows ``{user_id, history, target}`` whose target is the user's held-out item."""
    keep = [n for n, (user, target) in enumerate(zip(rows["user_id"], rows["target"])) if held_out.get(user) == target]
    return rows.select(keep)


__all__ = ["held_out_lightgcn", "held_out_rows", "held_out_training_items"]
