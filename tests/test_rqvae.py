"""RQ-VAE item tokenizer: losses and gradients, k-means init, dead-code restart, Trainer on real
Beauty embeddings, save/load (with the semantic-ID table) and AutoModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, TrainingArguments

from hf_genrec.errors import CheckpointMismatchError, ConfigError, InvalidInputError
from hf_genrec.item_tokenizers.rqvae import RQVAETokenizerConfig, RQVAETokenizerModel
from hf_genrec.remote_code import register_auto_classes
from hf_genrec.item_tokenizers.rqvae.modeling_rqvae import kmeans, rotate_onto
from hf_genrec.item_tokenizers.rqvae_training import train_rqvae_tokenizer
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

TINY = dict(input_dim=16, hidden_dims=[32, 16], latent_dim=8, num_levels=3, codebook_size=8)

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def beauty_subset(beauty_600):
    catalogue, embeddings = beauty_600
    return catalogue.item_ids, catalogue.texts(), embeddings


def _clustered(n: int = 256, dim: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, dim, generator=g) * 4
    return centres[torch.arange(n) % 8] + 0.3 * torch.randn(n, dim, generator=g)


def test_config_validates():
    with pytest.raises(ConfigError, match="codebook_size"):
        RQVAETokenizerConfig(codebook_size=0)
    with pytest.raises(ConfigError, match="activation"):
        RQVAETokenizerConfig(activation="swish-ish")
    config = RQVAETokenizerConfig()
    assert (config.input_dim, config.hidden_dims, config.latent_dim) == (384, [512, 256, 128], 32)
    assert (config.num_levels, config.codebook_size, config.beta) == (3, 256, 0.25)


def test_init_weights_are_not_the_generic_0_02():
    torch.manual_seed(0)
    model = RQVAETokenizerModel(RQVAETokenizerConfig())
    first = model.encoder.layers[0]
    # torch's Linear default (kaiming_uniform a=sqrt 5): std = 1/sqrt(3 * fan_in) ~= 0.0295 for 384 inputs
    assert 0.027 < float(first.weight.detach().std()) < 0.032
    assert not bool(model.quantizer.initialized)


def test_forward_losses_gradients_and_kmeans_init():
    torch.manual_seed(0)
    model = RQVAETokenizerModel(RQVAETokenizerConfig(**TINY, dead_code_window=0)).train()
    x = _clustered()
    out = model(x)
    assert bool(model.quantizer.initialized) and bool(model.input_stats_initialized)
    assert out.codes.shape == (256, 3) and out.codes.dtype == torch.long
    assert torch.allclose(out.loss, out.reconstruction_loss + out.quantization_loss)
    assert out.reconstructions.shape == x.shape
    out.loss.backward()
    # straight-through: the reconstruction loss reaches the encoder; the codebook loss the codebooks
    assert model.encoder.layers[0].weight.grad.abs().sum() > 0
    assert all(cb.weight.grad.abs().sum() > 0 for cb in model.quantizer.codebooks)
    # k-means init from the first batch: the 8 clusters of the first level are the 8 true clusters
    codes = model.encode_codes(x)
    assert len(set(codes[:, 0].tolist())) == 8
    assert model.training  # encode_codes restored the mode


def test_rotation_trick_keeps_values_and_passes_gradients():
    z = torch.randn(5, 8, requires_grad=True)
    target = torch.randn(5, 8)
    out = rotate_onto(z, target)
    assert torch.allclose(out, target, atol=1e-5)
    out.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    torch.manual_seed(0)
    model = RQVAETokenizerModel(RQVAETokenizerConfig(**TINY, rotation_trick=True)).train()
    model(_clustered()).loss.backward()
    assert model.encoder.layers[0].weight.grad.abs().sum() > 0


def test_dead_codes_are_restarted_from_batch_residuals():
    torch.manual_seed(0)
    config = RQVAETokenizerConfig(**{**TINY, "num_levels": 1}, dead_code_window=2)
    model = RQVAETokenizerModel(config).train()
    x = _clustered()
    model(x)
    with torch.no_grad():
        model.quantizer.codebooks[0].weight[3] = 1e4  # a code no latent will ever pick
    for _ in range(2):
        model(x)
    restarted = model.quantizer.codebooks[0].weight[3]
    assert restarted.abs().max() < 1e3  # re-seeded on a residual of the batch


def test_bad_embeddings_raise():
    model = RQVAETokenizerModel(RQVAETokenizerConfig(**TINY))
    with pytest.raises(InvalidInputError, match="shape"):
        model.encode_codes(torch.zeros(3, 5))
    bad = torch.zeros(3, 16)
    bad[1, 2] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        model(bad)


def test_save_load_round_trip_with_table_and_automodel(tmp_path):
    torch.manual_seed(0)
    model = RQVAETokenizerModel(RQVAETokenizerConfig(**TINY)).train()
    x = _clustered()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        model(x).loss.backward()
        optimizer.step()
    codes = model.encode_codes(x)
    table = SemanticIdTable.from_content_codes(list(range(100, 356)), codes.numpy(), 8, method="rqvae")
    model.semantic_id_table = table
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "semantic_ids.json"} <= {p.name for p in tmp_path.iterdir()}

    reloaded = RQVAETokenizerModel.from_pretrained(tmp_path)
    assert torch.equal(reloaded.encode_codes(x), codes)
    assert reloaded.semantic_id_table == table
    assert reloaded.semantic_id_table.item_of(table.codes_of(123)) == 123
    assert torch.equal(reloaded.input_mean, model.input_mean)
    # the k-means flag travels with the weights: training again must not re-initialise the codebooks
    assert bool(reloaded.quantizer.initialized)
    before = reloaded.quantizer.codebooks[0].weight.detach().clone()
    reloaded.config.dead_code_window = 0
    reloaded.train()(x)
    assert torch.equal(before, reloaded.quantizer.codebooks[0].weight)

    register_auto_classes(RQVAETokenizerConfig, RQVAETokenizerModel, ["AutoModel"])  # again: idempotent
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RQVAETokenizerConfig)
    auto = AutoModel.from_pretrained(tmp_path)
    assert isinstance(auto, RQVAETokenizerModel)
    assert torch.equal(auto.encode_codes(x), codes) and auto.semantic_id_table == table


def test_table_must_match_the_model(tmp_path):
    model = RQVAETokenizerModel(RQVAETokenizerConfig(**TINY))
    model.semantic_id_table = SemanticIdTable.from_content_codes([1, 2], np.array([[0, 1], [0, 1]]), 8)
    with pytest.raises(CheckpointMismatchError):
        model.save_pretrained(tmp_path)


def test_kmeans_recovers_separated_clusters():
    x = _clustered(400)
    centroids, assign = kmeans(x, 8, 20, torch.Generator().manual_seed(1))
    truth = torch.arange(400) % 8
    # same partition up to relabelling: each true cluster maps to exactly one k-means cluster
    assert all(len(set(assign[truth == c].tolist())) == 1 for c in range(8))
    assert len(set(assign.tolist())) == 8


def test_trainer_on_real_beauty_embeddings(beauty_subset, tmp_path):
    item_ids, texts, embeddings = beauty_subset
    # crafted duplicates: five items with the text (hence the embedding) of item 0
    embeddings = embeddings.clone()
    embeddings[1:6] = embeddings[0]
    recipe, args = load_item_tokenizer_recipe(
        Path(__file__).resolve().parents[1] / "training_args" / "rqvae-beauty.yaml",
        output_dir=str(tmp_path), codebook_size=32, hidden_dims=[128, 64], latent_dim=16,
        num_train_epochs=25, per_device_train_batch_size=128, logging_steps=50, learning_rate=3e-3,
        dead_code_window=10,
    )
    assert isinstance(args, TrainingArguments)
    model, table, history = train_rqvae_tokenizer(embeddings, item_ids, recipe, args)
    stats = table.stats()
    assert stats["unique_ids"] == len(item_ids) == 600
    assert stats["usage_per_level"][0] >= 0.8  # no collapse onto a few codes
    assert stats["entropy_per_level"][0] > 4.0
    assert stats["collision_rate"] < 0.2
    dup_ids = {table.codes_of(i) for i in item_ids[:6]}
    assert len(dup_ids) == 6 and len({c[:3] for c in dup_ids}) == 1  # same content codes, distinct IDs
    logged = [h for h in history["log_history"] if "loss_reconstruction" in h]
    assert logged and "usage_level_0" in logged[-1] and "collision_rate" in logged[-1]
    assert logged[-1]["loss_reconstruction"] < logged[0]["loss_reconstruction"]
    model.save_pretrained(tmp_path / "tok")
    again = RQVAETokenizerModel.from_pretrained(tmp_path / "tok")
    assert np.array_equal(again.encode_codes(embeddings).numpy(), table.codes[:, :3])
