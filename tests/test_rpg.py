"""OPQ long semantic IDs and the RPG family: digits, loss, exact ID scores, processor, a recipe end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import hf_genrec
from genrec_fixtures import write_beauty_slice
from hf_genrec.errors import CheckpointMismatchError, ConfigError, InvalidInputError
from hf_genrec.generation.ranking import rank_batch
from hf_genrec.item_tokenizers.opq import OPQConfig, OPQTokenizer
from hf_genrec.models.item_sequences import ItemSequenceCollator, sequence_examples
from hf_genrec.models.processing_utils import EvalCollator
from hf_genrec.models.rpg import RPGConfig, RPGForGenerativeRecommendation, RPGProcessor
from hf_genrec.semantic_ids import SemanticIdTable
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe


def clustered(n: int = 400, dim: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, dim, generator=g) * 4
    return centres[torch.arange(n) % 8] + 0.3 * torch.randn(n, dim, generator=g)


def test_opq_digits_reconstruct_better_with_rotation_and_round_trip(tmp_path):
    x = clustered()
    rotated = OPQTokenizer(OPQConfig(num_digits=4, codebook_size=16, rotation_iters=4, kmeans_iters=5, seed=0)).fit(x)
    plain = OPQTokenizer(OPQConfig(num_digits=4, codebook_size=16, rotation_iters=0, kmeans_iters=5, seed=0)).fit(x)
    codes = rotated.encode_codes(x)
    assert codes.shape == (400, 4) and int(codes.min()) >= 0 and int(codes.max()) < 16
    assert rotated.reconstruction_error(x) <= plain.reconstruction_error(x) + 1e-6
    assert torch.equal(codes, OPQTokenizer(rotated.config).fit(x).encode_codes(x))  # deterministic for a seed
    table = rotated.build_table(list(range(1000, 1400)), x)
    assert table.content_levels == 4 and table.method == "opq" and table.stats()["unique_ids"] == 400
    rotated.save_pretrained(tmp_path)
    again = OPQTokenizer.from_pretrained(tmp_path)
    assert torch.equal(again.encode_codes(x), codes) and again.semantic_id_table == table
    with pytest.raises(InvalidInputError, match="embeddings have 11 dimensions, the tokenizer was fit on 10"):
        OPQTokenizer(OPQConfig(num_digits=3)).fit(x).encode_codes(torch.randn(2, 11))  # 10 dims padded to 12


def _model_and_processor(digits: int = 5, codes: int = 4, items: int = 30) -> tuple[RPGForGenerativeRecommendation, RPGProcessor]:
    table = SemanticIdTable.from_content_codes(
        list(range(100, 100 + items)), np.random.default_rng(0).integers(0, codes, (items, digits)), codes
    )
    processor = RPGProcessor(table, max_history=6)
    torch.manual_seed(0)
    model = RPGForGenerativeRecommendation(RPGConfig(
        num_items=items, num_digits=digits, codebook_size=codes, hidden_size=16, num_attention_heads=2,
        max_position_embeddings=6, hidden_dropout_prob=0.0))
    model.set_item_codes(torch.as_tensor(processor.item_codes))
    return model.eval(), processor


def test_loss_is_the_mean_digit_cross_entropy_and_scores_are_id_log_probabilities():
    model, processor = _model_and_processor()
    rows = sequence_examples({1: [100, 101, 102, 103], 2: [110, 111]}, max_history=6).to_list()
    batch = ItemSequenceCollator(processor)(rows)
    out = model(**batch)
    supervised = batch["labels"] != -100
    logits = model.digit_logits(out.hidden_states[supervised])
    targets = model.item_codes[batch["labels"][supervised] - 1]
    manual = torch.stack([F.cross_entropy(logits[:, j], targets[:, j]) for j in range(5)]).mean()
    torch.testing.assert_close(out.loss, manual)
    inputs = processor([[100, 105], [120]])
    scores = model.item_scores(**inputs)
    log_probs = F.log_softmax(model.digit_logits(model.encode(**inputs)[:, -1]), -1)
    for row, codes in enumerate(model.item_codes[:7].tolist()):
        expected = sum(log_probs[:, j, c] for j, c in enumerate(codes))
        torch.testing.assert_close(scores[:, row], expected)


def test_item_loss_is_a_catalogue_softmax_over_mean_digit_logits_at_sampled_positions():
    """The item loss ranks whole items as item_scores does (up to a per-history constant) and, past
    item_loss_positions, is computed at a random subset of positions."""
    model, processor = _model_and_processor()
    rows = sequence_examples({1: [100, 101, 102, 103], 2: [110, 111, 125]}, max_history=6).to_list()
    batch = ItemSequenceCollator(processor)(rows)
    digit_only = model(**batch).loss
    model.config.item_loss_weight = 0.5
    hidden = model.encode(batch["input_ids"], batch["attention_mask"])
    supervised = batch["labels"] != -100
    logits = model.digit_logits(hidden[supervised])
    targets = batch["labels"][supervised] - 1
    item_logits = torch.stack([logits[:, j, model.item_codes[:, j]] for j in range(5)]).mean(0)  # [N, items]
    torch.testing.assert_close(model(**batch).loss, digit_only + 0.5 * F.cross_entropy(item_logits, targets))
    log_probs = F.log_softmax(logits, -1)
    id_log_probs = torch.stack([log_probs[:, j, model.item_codes[:, j]] for j in range(5)]).sum(0)
    gap = id_log_probs - 5 * item_logits  # the same order as the ranking: a constant a history
    torch.testing.assert_close(gap, gap[:, :1].expand_as(gap))
    model.config.item_loss_positions = 2  # 5 supervised positions: two sampled
    torch.manual_seed(3)
    sampled = model.item_loss(logits, targets)
    per_position = F.cross_entropy(item_logits, targets, reduction="none")
    assert any(torch.isclose(sampled, per_position[list(pair)].mean()) for pair in [(a, b) for a in range(5) for b in range(5) if a != b])
    assert not torch.isclose(sampled, per_position.mean())
    with pytest.raises(ConfigError, match="item_loss_weight must be >= 0"):
        RPGConfig(item_loss_weight=-1.0)


def test_heads_start_as_identity_and_codes_are_checked():
    model, processor = _model_and_processor()
    assert torch.count_nonzero(model.head_weight) == 0 and torch.count_nonzero(model.head_bias) == 0
    with pytest.raises(InvalidInputError, match=r"item codes must lie in \[0, 4\)"):
        model.set_item_codes(torch.full((30, 5), 4))
    with pytest.raises(CheckpointMismatchError, match="do not fit"):
        processor.check_model(RPGConfig(num_items=30, num_digits=6, codebook_size=4))


def test_ranking_padding_invariance_and_exclusion():
    model, processor = _model_and_processor()
    alone = model.item_scores(**processor([[100, 101, 102]]))
    padded = model.item_scores(**processor([[100, 101, 102], [103, 104, 105, 106, 107]]))[:1]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)
    rows, _ = rank_batch(model, processor, processor([[100, 101]]), top_k=30, exclude=[[100, 101]])
    ranked = [processor.item_ids[r] for r in rows[0].tolist() if r >= 0]
    assert len(ranked) == 28 and {100, 101}.isdisjoint(ranked)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("rpg")
    write_beauty_slice(data_dir, root / "data", users=200)
    (root / "ids.yaml").write_text(yaml.safe_dump({
        "method": "opq", "num_levels": 4, "codebook_size": 16, "rotation_iters": 2, "kmeans_iters": 5,
        "cooccurrence_weight": 1.0,
    }))
    recipe = {
        "model_family": "rpg", "dataset": "beauty-slice", "data_dir": str(root / "data"), "max_history": 20,
        "semantic_id_recipe": str(root / "ids.yaml"), "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "hidden_dropout_prob": 0.1, "item_loss_weight": 0.5, "item_loss_positions": 64,
        "output_dir": str(root / "out"), "use_cpu": True,
        "num_train_epochs": 3, "per_device_train_batch_size": 32, "per_device_eval_batch_size": 64,
        "learning_rate": 0.01, "eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True,
        "metric_for_best_model": "ndcg@10", "logging_steps": 5, "report_to": "none", "disable_tqdm": True,
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    return root, train_from_recipe(parse_recipe(root / "recipe.yaml"))


def test_recipe_builds_opq_ids_trains_and_is_scored_by_the_shared_evaluator(trained):
    from transformers import AutoModel, AutoProcessor

    root, result = trained
    out = root / "out"
    table = SemanticIdTable.load(out / "item_tokenizer")
    assert table.method == "opq" and table.content_levels == 4
    for split in ("validation", "test"):
        assert result[f"{split}_users"] == 200 and result[f"{split}_invalid_rate"] == 0.0
    assert result["test_recall@10"] > 0
    model, processor = AutoModel.from_pretrained(out).eval(), AutoProcessor.from_pretrained(out)
    assert type(model) is RPGForGenerativeRecommendation and type(processor) is RPGProcessor
    assert (model.config.item_loss_weight, model.config.item_loss_positions) == (0.5, 64)  # recipe -> saved config
    assert model.item_codes.tolist() == processor.item_codes  # the saved buffer is the saved table
    dataset = hf_genrec.load_rec_dataset("beauty-slice", root / "data")
    rows = dataset.splits(20)["test"].select(range(25))
    ranked, _ = rank_batch(model, processor, EvalCollator(processor)(rows.to_list()), top_k=10)
    recs = hf_genrec.recommend(model, processor, list(rows["history"]), k=10, batch_size=6)
    assert [[i for i, _ in r] for r in recs] == [[processor.item_ids[r] for r in row] for row in ranked.tolist()]
    own = model.recommend(list(rows["history"]), k=10)  # the checkpoint's own method (remote code carries it)
    assert [[i for i, _ in r] for r in own] == [[i for i, _ in r] for r in recs]
    assert (out / "exact_recommend.py").is_file() and (out / "recommend_base.py").is_file()
    record = json.loads((out / "eval_results.json").read_text())
    assert record["ndcg@10"] == result["test_ndcg@10"]


def test_shipped_rpg_recipes_parse():
    for name in ("rpg-beauty-cpu", "rpg-beauty"):
        parsed = parse_recipe(f"training_args/{name}.yaml", ["bf16=false"])
        assert parsed.recipe.model_family == "rpg" and parsed.recipe.semantic_id_method == "opq"
