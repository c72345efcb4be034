"""Ranking metrics: exact known answers, a brute-force reference, the evaluate module, the popularity baseline."""

from __future__ import annotations

import math
import random

import evaluate
import pytest
import torch

from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import InvalidInputError
from hf_genrec.evaluation import metric_module_path, ranking_metrics
from hf_genrec.evaluation.popularity import evaluate_popularity, rank_with_exclusions


def brute_force(ranked, targets, k):
    recall, ndcg = [], []
    for ranks, target in zip(ranked, targets):
        top = ranks[:k]
        hits = [1.0 if item in target else 0.0 for item in top]
        recall.append(sum(hits) / len(target))
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(target), k)))
        ndcg.append(dcg / ideal)
    return sum(recall) / len(recall), sum(ndcg) / len(ndcg)


def test_known_answers_single_target():
    ranked = [[7, 3, 9], [1, 2, 3], [4, 5, 6]]
    targets = [[3], [1], [8]]
    result = ranking_metrics(ranked, targets, ks=(1, 3))
    assert result["recall@1"] == pytest.approx(1 / 3)
    assert result["recall@3"] == pytest.approx(2 / 3)
    assert result["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1) / 3)


def test_known_answers_several_targets():
    # targets {1, 2, 5}: hits at ranks 1 and 3 of 3 -> recall 2/3; idcg over 3 ideal hits
    result = ranking_metrics([[1, 9, 2]], [[1, 2, 5]], ks=(3,))
    assert result["recall@3"] == pytest.approx(2 / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert result["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)


def test_matches_brute_force_on_random_lists():
    rng = random.Random(0)
    ranked = [rng.sample(range(50), 10) for _ in range(200)]
    targets = [rng.sample(range(50), rng.randint(1, 4)) for _ in range(200)]
    result = ranking_metrics(ranked, targets, ks=(5, 10))
    for k in (5, 10):
        recall, ndcg = brute_force(ranked, targets, k)
        assert result[f"recall@{k}"] == pytest.approx(recall)
        assert result[f"ndcg@{k}"] == pytest.approx(ndcg)


def test_padding_never_hits_and_empty_targets_rejected():
    assert ranking_metrics(torch.tensor([[-1, -1]]), [[5]], ks=(2,))["recall@2"] == 0.0
    with pytest.raises(InvalidInputError, match="no target"):
        ranking_metrics([[1]], [[]], ks=(1,))


def test_evaluate_module_loads_offline_and_agrees():
    metric = evaluate.load(metric_module_path())
    ranked, targets = [[1, 2, 3], [4, 5, 6]], [[2], [9, 4]]
    assert metric.compute(predictions=ranked, references=targets, ks=[3]) == pytest.approx(ranking_metrics(ranked, targets, ks=(3,)))


def test_rank_with_exclusions():
    ranked = rank_with_exclusions([5, 4, 3, 2, 1], [[4], []], k=3)
    assert ranked.tolist() == [[5, 3, 2], [5, 4, 3]]


def test_popularity_baseline_on_beauty(data_dir):
    dataset = load_rec_dataset("amazon-beauty", data_dir)
    result = evaluate_popularity(dataset, dataset.splits()["test"])
    assert result["recall@10"] == pytest.approx(0.011, abs=0.001)
    assert result["ndcg@10"] == pytest.approx(0.005, abs=0.001)
