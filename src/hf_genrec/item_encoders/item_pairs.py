"""Collaborative signal for an item text encoder: pairs of items consumed one after the other in
training histories, and a next-item retrieval measure on held-out pairs (before / after adaptation)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import torch

from ..data.window_pairs import window_pairs
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def next_item_pairs(sequences: Mapping[int, Sequence[int]], window: int = 1) -> list[tuple[int, int]]:
    """``(item, later item)`` for items at most ``window`` apart in a history, each unordered pair
    once (first occurrence, users in id order), never an item with itself."""
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    for _, anchor, positive in window_pairs(sequences, window):
        key = (min(anchor, positive), max(anchor, positive))
        if key not in seen:
            seen.add(key)
            pairs.append((anchor, positive))
    return pairs


def split_pairs(
    pairs: Sequence[tuple[int, int]], eval_pairs: int, seed: int = 42, max_train_pairs: int | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Shuffle once (seeded), hold out ``eval_pairs`` for the measure, cap the rest for training."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    held_out, train = shuffled[:eval_pairs], shuffled[eval_pairs:]
    if max_train_pairs is not None:
        train = train[:max_train_pairs]
    if not train:
        raise InvalidInputError(f"no training pairs left ({len(pairs)} pairs, {eval_pairs} held out)")
    return train, held_out


def pair_dataset(pairs: Sequence[tuple[int, int]], text_of: Callable[[int], str]):
    """``datasets.Dataset`` with ``anchor`` / ``positive`` text columns (MNRL's input)."""
    from datasets import Dataset

    return Dataset.from_dict({"anchor": [text_of(a) for a, _ in pairs], "positive": [text_of(b) for _, b in pairs]})


@torch.no_grad()
def evaluate_pairs(
    model: "SentenceTransformer",
    pairs: Sequence[tuple[int, int]],
    text_of: Callable[[int], str],
    top_k: int = 10,
    batch_size: int = 128,
    seed: int = 0,
) -> dict[str, float]:
    """Next-item retrieval on held-out pairs: each anchor ranks every other item of the pairs.

    Returns ``recall@K`` and MRR of the positive, the mean cosine of positive pairs and of random
    pairs (positives shuffled) -- an encoder that learned the collaborative signal raises the first
    three and widens the cosine gap.
    """
    if not pairs:
        raise InvalidInputError("no pairs to evaluate")
    items = sorted({i for pair in pairs for i in pair})
    index = {item: row for row, item in enumerate(items)}
    model.eval()
    embeddings = model.encode(
        [text_of(i) for i in items], batch_size=batch_size, convert_to_tensor=True,
        normalize_embeddings=True, show_progress_bar=False,
    ).float().cpu()
    anchors = torch.tensor([index[a] for a, _ in pairs])
    positives = torch.tensor([index[b] for _, b in pairs])
    scores = embeddings[anchors] @ embeddings.T
    rows = torch.arange(len(pairs))
    scores[rows, anchors] = float("-inf")  # never retrieve the anchor itself
    positive_scores = scores[rows, positives]
    ranks = (scores > positive_scores[:, None]).sum(dim=1)  # 0 = ranked first
    generator = torch.Generator().manual_seed(seed)
    shuffled = positives[torch.randperm(len(pairs), generator=generator)]
    random_cos = (embeddings[anchors] * embeddings[shuffled]).sum(dim=1)
    return {
        "pairs": len(pairs),
        "candidates": len(items),
        f"recall@{top_k}": round(float((ranks < top_k).float().mean()), 4),
        "mrr": round(float((1.0 / (ranks.float() + 1.0)).mean()), 4),
        "positive_cosine": round(float(positive_scores.mean()), 4),
        "random_cosine": round(float(random_cos.mean()), 4),
    }


__all__ = ["evaluate_pairs", "next_item_pairs", "pair_dataset", "split_pairs"]
