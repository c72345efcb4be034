"""SASRec: the baseline family as a plug-in — loss, causality, padding invariance, exact ranking,
processor, a recipe trained end to end and scored by the shared evaluator, Auto classes, remote code."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml

import hf_genrec
from genrec_fixtures import write_beauty_slice
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import CheckpointMismatchError, ConfigError, InvalidInputError, UnknownItemError
from hf_genrec.generation.ranking import rank_batch
from hf_genrec.models.processing_utils import EvalCollator
from hf_genrec.models.sasrec import SASRecConfig, SASRecForSequentialRecommendation, SASRecProcessor
from hf_genrec.models.item_sequences import ItemSequenceCollator, sequence_examples
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe

ITEMS = list(range(101, 141))


def tiny(loss: str = "full", **overrides) -> SASRecForSequentialRecommendation:
    torch.manual_seed(0)
    config = SASRecConfig(num_items=len(ITEMS), hidden_size=16, num_attention_heads=2, max_position_embeddings=8,
                          hidden_dropout_prob=0.0, loss=loss, num_negatives=5, **overrides)
    return SASRecForSequentialRecommendation(config).eval()


@pytest.fixture(scope="module")
def processor() -> SASRecProcessor:
    return SASRecProcessor(ITEMS, max_history=8)


def test_processor_left_pads_truncates_and_refuses_unknown_items(processor):
    batch = processor([[101, 102], [103, 104, 105, 106, 107, 108, 109, 110, 111, 112]])
    assert batch["input_ids"].tolist() == [[0] * 6 + [1, 2], [5, 6, 7, 8, 9, 10, 11, 12]]  # the last 8 items
    assert batch["attention_mask"].tolist() == [[0] * 6 + [1, 1], [1] * 8]
    for bad in (999, True, 101.0, "101"):
        with pytest.raises(UnknownItemError, match="not in the model's catalogue of 40 items"):
            processor([[101, bad]])
    with pytest.raises(InvalidInputError, match="history 1: empty history"):
        processor([[101], []])


def test_training_rows_learn_every_position_once(processor):
    rows = sequence_examples({7: [101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111], 8: [120, 121]}, max_history=8)
    assert rows["history"][0] == [101, 102, 103, 104, 105, 106, 107, 108] and rows["supervised"][0] == 0
    assert [h[-1] for h in rows["history"][1:3]] == [109, 110] and rows["supervised"][1:3] == [1, 1]
    learned = []
    batch = ItemSequenceCollator(processor)(rows.to_list())
    for labels in batch["labels"]:
        learned += [ITEMS[t - 1] for t in labels.tolist() if t != -100]
    # each item after the first is learned exactly once, from the items before it
    assert sorted(learned) == sorted([102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 121])
    assert batch["labels"][3].tolist() == [-100] * 7 + [processor.encode_items([121])[0]]


def test_full_loss_is_the_softmax_over_the_catalogue(processor):
    model = tiny()
    rows = sequence_examples({1: [101, 105, 109, 113], 2: [102, 104]}, max_history=8).to_list()
    batch = ItemSequenceCollator(processor)(rows)
    out = model(**batch)
    supervised = batch["labels"] != -100
    logits = out.hidden_states[supervised] @ model.item_embeddings.weight[1:].T
    torch.testing.assert_close(out.loss, F.cross_entropy(logits, batch["labels"][supervised] - 1))
    sampled = tiny(loss="sampled")(**batch).loss
    assert torch.isfinite(sampled) and sampled < out.loss  # 6 candidates are easier than 40


def test_causal_and_padding_invariant(processor):
    """Scores after a history never depend on later items, nor on how much the batch pads it."""
    model = tiny()
    alone = model.item_scores(**processor([[101, 102, 103]]))
    padded = model.item_scores(**processor([[101, 102, 103], [110, 111, 112, 113, 114, 115, 116]]))[:1]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)
    batch = processor([[101, 102, 103, 104]])
    hidden = model.encode(**batch)
    changed = batch["input_ids"].clone()
    changed[0, -1] = 30
    torch.testing.assert_close(model.encode(changed, batch["attention_mask"])[:, :-1], hidden[:, :-1])
    with pytest.raises(InvalidInputError, match="exceed max_position_embeddings=8"):
        model.encode(torch.ones(1, 9, dtype=torch.long))


def test_exact_ranking_is_the_sorted_scores_minus_exclusions(processor):
    model = tiny()
    histories = [[101, 102, 103], [120], [130, 131]]
    exclude = [[101, 102], [], [ITEMS[0]]]
    inputs = processor(histories)
    rows, scores = rank_batch(model, processor, inputs, top_k=10, exclude=exclude)
    full = model.item_scores(**inputs)
    for user in range(3):
        order = [r for r in full[user].argsort(descending=True).tolist() if ITEMS[r] not in exclude[user]][:10]
        assert rows[user].tolist() == order
        torch.testing.assert_close(scores[user], full[user, order])
    # top_k beyond the catalogue pads with -1
    rows, scores = rank_batch(model, processor, inputs, top_k=45)
    assert (rows[:, 40:] == -1).all() and torch.isinf(scores[:, 40:]).all()


def test_config_refuses_impossible_shapes():
    with pytest.raises(ConfigError, match="not a multiple of num_attention_heads"):
        SASRecConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ConfigError, match="loss must be one of"):
        SASRecConfig(loss="bpr")
    with pytest.raises(CheckpointMismatchError, match="num_items 3"):
        SASRecProcessor(ITEMS).check_model(SASRecConfig(num_items=3))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("sasrec")
    write_beauty_slice(data_dir, root / "data", users=200)
    recipe = {
        "model_family": "sasrec",
        "dataset": "beauty-slice",
        "data_dir": str(root / "data"),
        "max_history": 20,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "hidden_dropout_prob": 0.1,
        "output_dir": str(root / "out"),
        "use_cpu": True,
        "num_train_epochs": 3,
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 64,
        "learning_rate": 0.01,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "load_best_model_at_end": True,
        "metric_for_best_model": "ndcg@10",
        "logging_steps": 5,
        "report_to": "none",
        "disable_tqdm": True,
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    result = train_from_recipe(parse_recipe(root / "recipe.yaml"))
    return root, result, load_rec_dataset("beauty-slice", root / "data")


def test_recipe_trains_and_is_scored_by_the_shared_evaluator(trained):
    root, result, dataset = trained
    out = root / "out"
    for split in ("validation", "test"):
        assert result[f"{split}_users"] == 200 and result[f"{split}_invalid_rate"] == 0.0
        assert 0 <= result[f"{split}_ndcg@10"] <= result[f"{split}_recall@10"] <= 1
    assert result["test_recall@10"] > 0  # it learned something
    assert not (out / "semantic_ids.json").exists()  # no semantic IDs: it ranks item ids
    record = json.loads((out / "eval_results.json").read_text())
    assert record["ndcg@10"] == result["test_ndcg@10"] and record["split"] == "test"
    from hf_genrec.inference import evaluate_saved_model

    again = evaluate_saved_model(out, split="test", scratch_dir=str(root / "scratch"))
    assert again["ndcg@10"] == pytest.approx(result["test_ndcg@10"])


def test_auto_classes_and_recommend_agree_with_the_evaluation_path(trained):
    from transformers import AutoModel, AutoProcessor

    root, _, dataset = trained
    model = AutoModel.from_pretrained(root / "out").eval()
    processor = AutoProcessor.from_pretrained(root / "out")
    assert type(model) is SASRecForSequentialRecommendation and type(processor) is SASRecProcessor
    rows = dataset.splits(20)["test"].select(range(30))
    batch = EvalCollator(processor)(rows.to_list())
    ranked, _ = rank_batch(model, processor, batch, top_k=10)
    recs = hf_genrec.recommend(model, processor, list(rows["history"]), k=10, batch_size=7)
    assert [[item for item, _ in r] for r in recs] == [[processor.item_ids[i] for i in row] for row in ranked.tolist()]
    assert all(s[0] >= s[-1] for s in ([score for _, score in r] for r in recs))


def test_checkpoint_loads_as_remote_code_without_the_package(trained, tmp_path):
    from test_remote_code import _run_without_package

    root, _, dataset = trained
    script = r"""
import importlib.util, json, sys
import torch
assert importlib.util.find_spec("hf_genrec") is None
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
ids = torch.tensor(json.loads(sys.argv[2]))
histories, exclude = json.loads(sys.argv[3])
recs = model.recommend(histories, k=5, exclude=exclude)  # the checkpoint's own processor and exact scores
print(json.dumps({"class": type(model).__name__, "scores": model.item_scores(ids, (ids != 0).long()).tolist(),
                  "recommend": recs}))
"""
    processor = SASRecProcessor.from_pretrained(root / "out")
    histories = [processor.item_ids[:3], processor.item_ids[5:6]]
    inputs = processor(histories)
    model = SASRecForSequentialRecommendation.from_pretrained(root / "out").eval()
    exclude = [[item for item, _ in model.recommend(histories, k=2)[0]], []]  # drop user 0's top two
    remote = _run_without_package(tmp_path, script, str(root / "out"), json.dumps(inputs["input_ids"].tolist()),
                                  json.dumps([histories, exclude]))
    assert remote["class"] == "SASRecForSequentialRecommendation"
    torch.testing.assert_close(torch.tensor(remote["scores"]), model.item_scores(**inputs), atol=1e-5, rtol=1e-5)
    package = hf_genrec.recommend(model, processor, histories, k=5, exclude=exclude)
    assert [[item for item, _ in r] for r in remote["recommend"]] == [[item for item, _ in r] for r in package]
    assert not set(exclude[0]) & {item for item, _ in remote["recommend"][0]} and len(remote["recommend"][0]) == 5


def test_shipped_sasrec_recipes_parse():
    for name in ("sasrec-beauty-cpu", "sasrec-phones-cpu", "sasrec-beauty", "sasrec-phones"):
        parsed = parse_recipe(f"training_args/{name}.yaml", ["bf16=false"])
        assert parsed.recipe.model_family == "sasrec" and parsed.family.uses_semantic_ids is False
        assert parsed.recipe.dataset.split("-")[1] in name and parsed.training_args.load_best_model_at_end
