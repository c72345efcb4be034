"""RQ-KMeans item tokenizer: determinism, real Beauty usage, duplicates, save/load."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from hf_genrec.errors import ConfigError, DataFormatError, InvalidInputError
from hf_genrec.item_tokenizers.rqkmeans import RQKMeansConfig, RQKMeansTokenizer, rqkmeans_semantic_ids


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def beauty_subset(beauty_600):
    catalogue, embeddings = beauty_600
    return catalogue.item_ids, embeddings


def test_deterministic_with_seed_and_sensitive_to_it(beauty_subset):
    item_ids, embeddings = beauty_subset
    config = RQKMeansConfig(num_levels=3, codebook_size=32, num_iters=15, seed=7)
    a = RQKMeansTokenizer(config).fit(embeddings)
    b = RQKMeansTokenizer(config).fit(embeddings)
    assert torch.equal(a.centroids, b.centroids)
    assert torch.equal(a.encode_codes(embeddings), b.encode_codes(embeddings))
    c = RQKMeansTokenizer(RQKMeansConfig(num_levels=3, codebook_size=32, num_iters=15, seed=8)).fit(embeddings)
    assert not torch.equal(a.centroids, c.centroids)


def test_real_beauty_codes_use_the_codebooks(beauty_subset):
    item_ids, embeddings = beauty_subset
    table = rqkmeans_semantic_ids(item_ids, embeddings, RQKMeansConfig(codebook_size=32, num_iters=15))
    stats = table.stats()
    assert stats["unique_ids"] == 600 and table.num_levels == 4 and table.content_levels == 3
    assert min(stats["usage_per_level"]) >= 0.9
    assert stats["entropy_per_level"][0] > 4.0
    # deeper levels split the first level's clusters (600 points in 384-d: the last level is coarse)
    assert stats["unique_content_prefixes"] > 4 * 32
    assert stats["max_items_per_prefix"] < 40
    # residual levels explain what the previous ones left: the quantisation error shrinks per level
    tok = RQKMeansTokenizer(RQKMeansConfig(codebook_size=32, num_iters=15)).fit(embeddings)
    x = (embeddings - tok.mean) / tok.std
    codes = tok.encode_codes(embeddings)
    errors, approx = [], torch.zeros_like(x)
    for level in range(3):
        approx = approx + tok.centroids[level][codes[:, level]]
        errors.append(float((x - approx).pow(2).sum(-1).mean()))
    assert errors[0] > errors[1] > errors[2]


def test_duplicate_items_get_distinct_ids():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=g)
    x[10:14] = x[3]  # five identical items
    table = rqkmeans_semantic_ids(list(range(1000, 1050)), x, RQKMeansConfig(num_levels=2, codebook_size=4))
    ids = [table.codes_of(i) for i in (1003, 1010, 1011, 1012, 1013)]
    assert len(set(ids)) == 5 and len({i[:2] for i in ids}) == 1
    assert sorted(i[2] for i in ids) == [0, 1, 2, 3, 4]
    assert table.item_of(ids[2]) == 1011


def test_save_load_round_trip(beauty_subset, tmp_path):
    item_ids, embeddings = beauty_subset
    tok = RQKMeansTokenizer(RQKMeansConfig(codebook_size=16, num_iters=5))
    tok.fit(embeddings)
    table = tok.build_table(item_ids, embeddings)
    tok.save_pretrained(tmp_path)
    assert {"rqkmeans.safetensors", "rqkmeans_config.json", "semantic_ids.json"} <= {p.name for p in tmp_path.iterdir()}
    again = RQKMeansTokenizer.from_pretrained(tmp_path)
    assert again.config == tok.config
    assert torch.equal(again.encode_codes(embeddings), tok.encode_codes(embeddings))
    assert again.semantic_id_table == table
    assert np.array_equal(again.semantic_id_table.codes[:, :3], again.encode_codes(embeddings).numpy())


def test_bad_input_and_files(tmp_path):
    with pytest.raises(ConfigError):
        RQKMeansConfig(codebook_size=0)
    bad = torch.zeros(5, 3)
    bad[0, 0] = float("inf")
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        RQKMeansTokenizer().fit(bad)
    with pytest.raises(InvalidInputError, match="not fit"):
        RQKMeansTokenizer().encode_codes(torch.zeros(2, 3))
    with pytest.raises(DataFormatError, match="rqkmeans_config.json"):
        RQKMeansTokenizer.from_pretrained(tmp_path)
    (tmp_path / "rqkmeans_config.json").write_text('{"num_levels": 3, "colour": "red"}')
    with pytest.raises(ConfigError, match="colour"):
        RQKMeansTokenizer.from_pretrained(tmp_path)
