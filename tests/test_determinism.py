"""Same seed and data, same result: semantic IDs (RQ-KMeans, RQ-VAE) and recommendations."""

from __future__ import annotations


import pytest
import torch
import yaml
from safetensors.torch import load_file

import hf_genrec
from genrec_fixtures import TINY_TIGER, random_table, write_beauty_slice
from hf_genrec.data import load_rec_dataset
from hf_genrec.item_tokenizers.rqkmeans import RQKMeansConfig, RQKMeansTokenizer
from hf_genrec.semantic_ids.id_table import SemanticIdTable


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------------
# Semantic IDs
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def beauty_embeddings(beauty_600):
    """MiniLM embeddings of the first 128 real Beauty items (texts as the data layer renders them)."""
    catalogue, embeddings = beauty_600
    return catalogue.item_ids[:128], embeddings[:128]


def test_rqkmeans_same_seed_same_ids(beauty_embeddings, tmp_path):
    item_ids, embeddings = beauty_embeddings
    config = RQKMeansConfig(num_levels=3, codebook_size=8, num_iters=20, seed=42)
    tables = []
    for generator_seed in (1, 2):  # whatever state torch's global generator is in
        torch.manual_seed(generator_seed)
        tables.append(RQKMeansTokenizer(config).fit(embeddings).build_table(item_ids, embeddings))
    assert tables[0] == tables[1]
    assert tables[0].stats()["unique_content_prefixes"] > 16  # a real clustering, not a constant
    # saved and reloaded, the tokenizer gives the same codes, and so does a fit on a copy of the data
    tokenizer = RQKMeansTokenizer(config).fit(embeddings)
    tokenizer.build_table(item_ids, embeddings)
    tokenizer.save_pretrained(tmp_path)
    reloaded = RQKMeansTokenizer.from_pretrained(tmp_path)
    assert torch.equal(reloaded.encode_codes(embeddings), torch.as_tensor(tables[0].codes[:, :3]))
    assert SemanticIdTable.load(tmp_path) == tables[0]
    assert RQKMeansTokenizer(config).fit(embeddings.clone().numpy()).build_table(item_ids, embeddings) == tables[0]
    other = RQKMeansTokenizer(RQKMeansConfig(num_levels=3, codebook_size=8, num_iters=20, seed=7)).fit(embeddings)
    assert not torch.equal(other.centroids, tokenizer.centroids)  # the seed is what fixes the result


def test_rqvae_same_seed_same_ids(beauty_embeddings):
    from hf_genrec.item_tokenizers.rqvae_training import train_rqvae_tokenizer
    from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

    item_ids, embeddings = beauty_embeddings
    tables, weights = [], []
    for generator_seed in (1, 2):
        torch.manual_seed(generator_seed)  # train_rqvae_tokenizer seeds from its arguments
        recipe, args = load_item_tokenizer_recipe(
            None, num_levels=2, codebook_size=8, hidden_dims=[32], latent_dim=8, kmeans_iters=5, dropout=0.1,
            num_train_epochs=6, per_device_train_batch_size=32, logging_steps=1000, output_dir="unused", use_cpu=True,
        )
        model, table, history = train_rqvae_tokenizer(embeddings, item_ids, recipe, args)
        assert history["train_steps"] == 24
        tables.append(table)
        weights.append(model.state_dict())
    assert tables[0] == tables[1]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


# ---------------------------------------------------------------------------------------------------
# Recommendations
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def beauty_slice(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("determinism")
    write_beauty_slice(data_dir, root / "data", users=100)
    dataset = load_rec_dataset("beauty-slice", root / "data")
    random_table(dataset.catalogue.item_ids).save(root / "ids")
    histories = [row["history"] for row in dataset.splits()["test"].select(range(20))]
    return root, histories


def _train(root, name: str, generator_seed: int, histories):
    """A tiny TIGER (dropout on, shuffled data) trained from the same recipe; its weights and recommendations."""
    from hf_genrec.inference.saved_models import load_saved_model
    from hf_genrec.training.pipeline import train_from_recipe
    from hf_genrec.training.recipe_loading import parse_recipe

    recipe = {
        **TINY_TIGER,
        "dataset": "beauty-slice",
        "data_dir": str(root / "data"),
        "semantic_ids": str(root / "ids"),
        "output_dir": str(root / name),
        "seed": 7,
        "dropout_rate": 0.1,
        "max_steps": 10,
        "save_strategy": "no",
        "eval_strategy": "no",
        "test_at_end": False,
    }
    (root / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    torch.manual_seed(generator_seed)  # the state torch's global generator happens to be in
    train_from_recipe(parse_recipe(root / f"{name}.yaml"))
    saved = load_saved_model(root / name)
    return load_file(str(root / name / "model.safetensors")), hf_genrec.recommend(saved.model, saved.processor, histories, k=10, num_beams=10)


@pytest.fixture(scope="module")
def first_run(beauty_slice):
    root, histories = beauty_slice
    return _train(root, "a", 1, histories)


def test_same_seed_same_recommendations(beauty_slice, first_run):
    root, histories = beauty_slice
    weights_a, recs_a = first_run
    weights_b, recs_b = _train(root, "b", 1, histories)
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    assert recs_a == recs_b  # items and scores, exactly
    assert all(len(r) == 10 for r in recs_a)


def test_recipe_seed_alone_fixes_the_result(beauty_slice, first_run):
    """The recipe's seed must be enough: the global generator's state must not change the model."""
    root, histories = beauty_slice
    weights_a, recs_a = first_run
    weights_c, recs_c = _train(root, "c", 2, histories)
    assert all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)
    assert recs_a == recs_c
