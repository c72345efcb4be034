"""The popularity baseline: every user gets the most frequent training items, scored like any model."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from datasets import Dataset

from ..data import RecDataset
from .metrics import pad_lists, ranking_metrics


def popularity_ranking(train_sequences: dict[int, list[int]], catalogue_ids: Sequence[int]) -> list[int]:
    """All catalogue items by training frequency (ties by item id), most popular first."""
    counts = Counter(item for items in train_sequences.values() for item in items)
    return sorted(catalogue_ids, key=lambda item: (-counts.get(item, 0), item))


def rank_with_exclusions(order: Sequence[int], excludes: Sequence[Sequence[int]], k: int) -> torch.Tensor:
    """Top-``k`` of a global ranking for each user after removing that user's excluded items."""
    rows = []
    for exclude in excludes:
        banned = set(exclude)
        picked = []
        for item in order:
            if item not in banned:
                picked.append(item)
                if len(picked) == k:
                    break
        rows.append(picked)
    return pad_lists(rows, width=k)


def evaluate_popularity(dataset: RecDataset, split: Dataset, ks: Sequence[int] = (5, 10)) -> dict[str, float]:
    order = popularity_ranking(dataset.train_sequences(), dataset.catalogue.item_ids)
    ranked = rank_with_exclusions(order, split["exclude"], max(ks))
    return ranking_metrics(ranked, split["targets"], ks)
