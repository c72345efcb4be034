"""Co-occurrence smoothing of item embeddings before quantisation (hf_genrec.models.cooccurrence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_genrec.errors import ConfigError, InvalidInputError
from hf_genrec.item_tokenizers.cooccurrence import cooccurrence_counts, smooth_with_cooccurrence
from hf_genrec.item_tokenizers.build import build_semantic_ids
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.training.recipe_loading import parse_recipe
from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe


def test_counts_are_symmetric_within_the_window_and_skip_repeats():
    items = [10, 20, 30, 40]
    counts = cooccurrence_counts({1: [10, 20, 30, 10], 2: [40, 20]}, items, window=1).to_dense()
    expected = torch.zeros(4, 4)
    for a, b in ((0, 1), (1, 2), (2, 0), (3, 1)):  # consecutive pairs only
        expected[a, b] += 1
        expected[b, a] += 1
    assert torch.equal(counts, expected)
    wide = cooccurrence_counts([[10, 20, 30, 10]], items, window=3).to_dense()
    assert wide[0, 0] == 0, "an item repeated in a sequence is not its own neighbour"
    assert wide[0, 2] == 2 and wide[0, 1] == 2 and wide[1, 2] == 1


def test_unknown_items_and_bad_settings_are_named():
    with pytest.raises(InvalidInputError, match="user 7 holds item 99"):
        cooccurrence_counts({7: [1, 99]}, [1, 2], window=2)
    with pytest.raises(InvalidInputError, match="window"):
        cooccurrence_counts({7: [1, 2]}, [1, 2], window=0)
    with pytest.raises(InvalidInputError, match="weight"):
        smooth_with_cooccurrence(torch.zeros(2, 3), [1, 2], {7: [1, 2]}, weight=-1.0)


def test_smoothing_adds_the_count_weighted_neighbour_mean():
    torch.manual_seed(0)
    x = torch.randn(5, 4) * 3 + 1
    x[:, 3] = 0.25  # a constant dimension stays finite (no division by a zero spread)
    z = smooth_with_cooccurrence(x, [1, 2, 3, 4, 5], [[1, 2], [1, 2], [1, 3]], weight=2.0, window=1)
    s = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    assert torch.isfinite(z).all() and torch.all(z[:, 3] == 0)
    torch.testing.assert_close(z[0], s[0] + 2.0 * (2 * s[1] + s[2]) / 3)
    torch.testing.assert_close(z[1], s[1] + 2.0 * s[0])
    torch.testing.assert_close(z[3:], s[3:], msg="items without neighbours keep their own embedding")


def test_items_consumed_together_share_id_prefixes(tmp_path):
    """Random 'text' embeddings, sequences that pair item 2k with 2k+1: smoothing groups the pairs."""
    rng = np.random.default_rng(0)
    n = 400
    embeddings = torch.as_tensor(rng.normal(size=(n, 16)), dtype=torch.float32)
    item_ids = list(range(1, n + 1))
    sequences = {user: [2 * (user % (n // 2)) + 1, 2 * (user % (n // 2)) + 2] for user in range(2 * n)}

    def shared_first_code(weight: float) -> float:
        out = tmp_path / f"w{weight}"
        summary = build_semantic_ids(
            method="rqkmeans", output_dir=out, item_ids=item_ids, embeddings=embeddings, sequences=sequences,
            codebook_size=8, kmeans_iters=10, cooccurrence_weight=weight, cooccurrence_window=1,
        ).summary
        assert summary["cooccurrence_weight"] == weight and summary["unique_ids"] == n
        codes = SemanticIdTable.load(out).codes
        return float(np.mean(codes[0::2, 0] == codes[1::2, 0]))

    assert shared_first_code(0.0) < 0.3
    assert shared_first_code(1.0) > 0.95  # each item plus its only neighbour: the pair becomes one point
    with pytest.raises(InvalidInputError, match="sequences"):
        build_semantic_ids(
            method="rqkmeans", output_dir=tmp_path / "x", item_ids=item_ids, embeddings=embeddings, cooccurrence_weight=1.0
        )


def test_cpu_recipe_builds_its_ids_with_cooccurrence(tmp_path, monkeypatch):
    """The recipe names its item-tokenizer recipe beside it, found from any working directory."""
    recipe_path = Path(__file__).resolve().parents[1] / "training_args" / "tiger-beauty-cpu.yaml"
    monkeypatch.chdir(tmp_path)
    parsed = parse_recipe(recipe_path)
    ids_recipe, _ = load_item_tokenizer_recipe(parsed.recipe.semantic_id_recipe)
    assert ids_recipe.method == parsed.recipe.semantic_id_method == "rqkmeans"
    assert ids_recipe.cooccurrence_weight > 0 and ids_recipe.cooccurrence_window >= 1
    with pytest.raises(ConfigError, match="'nowhere.yaml' exists neither"):
        parse_recipe(recipe_path, ["semantic_id_recipe=nowhere.yaml"])
