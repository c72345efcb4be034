"""ColaRec GIDs: size-capped hierarchical k-means gives unique, capacity-respecting, seeded codes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_genrec.errors import InvalidInputError
from hf_genrec.item_tokenizers.constrained_kmeans import (
    capacity_assign,
    colarec_semantic_ids,
    constrained_kmeans,
    fewest_levels,
    hierarchical_constrained_kmeans,
)
from hf_genrec.semantic_ids.id_table import SemanticIdTable


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(1, 8),
    slack=st.integers(0, 3),
    seed=st.integers(0, 10_000),
)
def test_capacity_assign_never_overfills(n, k, slack, seed):
    cap = -(-n // k) + slack
    d = np.random.default_rng(seed).random((n, k))
    labels = capacity_assign(d, cap)
    assert labels.shape == (n,)
    assert labels.min() >= 0 and labels.max() < k
    assert np.bincount(labels, minlength=k).max() <= cap


def test_capacity_assign_is_argmin_when_it_fits_and_moves_the_cheapest_rows_otherwise():
    d = np.array([[0.0, 5.0], [0.1, 5.0], [0.2, 0.3], [4.0, 0.0]])
    assert capacity_assign(d, 4).tolist() == d.argmin(1).tolist()
    # capacity 2: three rows prefer column 0; row 2 loses least by moving (regret 0.1)
    assert capacity_assign(d, 2).tolist() == [0, 0, 1, 1]
    with pytest.raises(InvalidInputError):
        capacity_assign(d, 1)


def test_constrained_kmeans_recovers_balanced_blobs_and_respects_a_tight_cap():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    x = np.concatenate([c + rng.normal(scale=0.5, size=(25, 2)) for c in centers])
    truth = np.repeat(np.arange(4), 25)
    labels = constrained_kmeans(x, 4, 25, seed=0)
    assert np.bincount(labels).max() <= 25
    # every true blob maps to exactly one cluster
    assert all(len(set(labels[truth == b])) == 1 for b in range(4))
    # a cap of 20 forces spill-over yet stays within capacity (5 clusters x 20 = 100 points)
    tight = constrained_kmeans(x, 5, 20, seed=0)
    assert np.bincount(tight, minlength=5).max() <= 20
    assert np.array_equal(tight, constrained_kmeans(x, 5, 20, seed=0))


def test_hierarchical_codes_are_unique_capped_and_deterministic():
    rng = np.random.default_rng(1)
    # a skewed cloud: one dense region holding most items stresses the caps
    x = np.concatenate([rng.normal(scale=0.1, size=(400, 8)), rng.normal(scale=3.0, size=(100, 8))])
    levels, k = 3, 8
    codes = hierarchical_constrained_kmeans(x, levels=levels, clusters=k, seed=3)
    assert codes.shape == (500, levels)
    assert len({tuple(c) for c in codes.tolist()}) == 500
    assert codes.min() >= 0 and codes.max() < k
    for level in range(levels - 1):
        sizes = Counter(map(tuple, codes[:, : level + 1].tolist()))
        assert max(sizes.values()) <= k ** (levels - 1 - level), f"level {level} cluster over capacity"
    # the last code is the index inside the leaf: 0..n-1 within every leaf
    leaves: dict[tuple, list[int]] = {}
    for row in codes.tolist():
        leaves.setdefault(tuple(row[:-1]), []).append(row[-1])
    assert all(sorted(v) == list(range(len(v))) for v in leaves.values())
    assert np.array_equal(codes, hierarchical_constrained_kmeans(x, levels=levels, clusters=k, seed=3))
    assert not np.array_equal(codes, hierarchical_constrained_kmeans(x, levels=levels, clusters=k, seed=4))


def test_semantic_id_table_and_errors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4))
    item_ids = list(range(1000, 1300))
    table = colarec_semantic_ids(item_ids, x, levels=3, clusters=8, seed=0)
    assert isinstance(table, SemanticIdTable)
    assert table.method == "colarec-kmeans"
    assert table.codebook_sizes == [8, 8, 8] and table.content_levels == 3
    assert table.stats()["collision_rate"] == 0.0
    assert table.item_of(table.codes_of(1005)) == 1005
    with pytest.raises(InvalidInputError):
        colarec_semantic_ids(item_ids, rng.normal(size=(600, 4)), levels=3, clusters=8)  # ids vs rows
    with pytest.raises(InvalidInputError):
        hierarchical_constrained_kmeans(rng.normal(size=(600, 4)), levels=3, clusters=8)  # 600 > 8^3
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidInputError):
        hierarchical_constrained_kmeans(bad, levels=3, clusters=8)


def test_paper_configuration_on_a_catalogue_sized_cloud():
    """32 clusters x 3 levels on 5,000 items: unique paths, caps 1024 / 32, balanced first level."""
    x = np.random.default_rng(5).normal(size=(5000, 16))
    codes = hierarchical_constrained_kmeans(x, levels=3, clusters=32, seed=0, max_iter=20)
    assert len({tuple(c) for c in codes.tolist()}) == 5000
    assert max(Counter(codes[:, 0].tolist()).values()) <= 1024
    assert max(Counter(map(tuple, codes[:, :2].tolist())).values()) <= 32
    assert len(set(codes[:, 0].tolist())) == 32


def test_gid_levels_are_derived_from_the_catalogue_size():
    """A ColaRec recipe without gid_levels gets the fewest levels that hold the catalogue, so a larger category
    than the tuned ones still gets a unique GID for every item instead of a refusal."""
    from hf_genrec.models.colarec.family import ColaRecRecipe
    from hf_genrec.training.recipe_loading import parse_recipe

    assert fewest_levels(10_429, 32) == 3 and fewest_levels(32**3, 32) == 3 and fewest_levels(32**3 + 1, 32) == 4
    assert fewest_levels(5, 32) == 2  # a prefix and a leaf index, however small the catalogue
    assert ColaRecRecipe(gid_clusters=8).semantic_id_overrides(600)["num_levels"] == 4  # 600 > 8^3
    assert ColaRecRecipe(gid_clusters=8, gid_levels=3).semantic_id_overrides(600)["num_levels"] == 3  # set: kept
    parsed = parse_recipe(str(Path(__file__).parents[1] / "training_args" / "colarec-phones-cpu.yaml"))
    assert parsed.family_recipe.gid_levels is None
    assert parsed.family_recipe.semantic_id_overrides(10_429)["num_levels"] == 3  # the figures in BENCHMARKS.md
    codes = hierarchical_constrained_kmeans(np.random.default_rng(0).normal(size=(600, 4)), levels=fewest_levels(600, 8), clusters=8)
    assert len({tuple(row) for row in codes.tolist()}) == 600
