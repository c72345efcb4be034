"""ColaRec end to end on a real amazon-phones slice: LightGCN -> GIDs -> multi-task training -> evaluation."""

from __future__ import annotations

import json

import pytest
import yaml

from genrec_fixtures import TINY_COLAREC, write_phones_slice
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.inference.saved_models import evaluate_saved_model, load_saved_model
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe


def train_tiny(tmp_path, data_dir, **overrides):
    write_phones_slice(data_dir, tmp_path / "data", users=120)
    recipe = {
        **TINY_COLAREC,
        "dataset": "phones-slice",
        "data_dir": str(tmp_path / "data"),
        "output_dir": str(tmp_path / "out"),
        "max_steps": 6,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "save_steps": 3,
        "load_best_model_at_end": True,
        "metric_for_best_model": "ndcg@20",
        **overrides,
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return train_from_recipe(parse_recipe(tmp_path / "recipe.yaml"))


def test_colarec_trains_logs_each_loss_and_evaluates(tmp_path, data_dir):
    result = train_tiny(tmp_path, data_dir, plot_loss_curves=True)
    out = tmp_path / "out"
    for split in ("validation", "test"):
        assert result[f"{split}_invalid_rate"] == 0.0
        assert 0 <= result[f"{split}_ndcg@20"] <= 1
    # GIDs from LightGCN, unique by construction, no disambiguation level
    table = SemanticIdTable.load(out / "item_tokenizer")
    assert table.method == "colarec-kmeans" and table.num_levels == 3 and table.stats()["unique_ids"] == table.num_items
    lightgcn = json.loads((out / "item_tokenizer" / "lightgcn_results.json").read_text())
    assert {"validation_ndcg@20", "test_ndcg@20", "history"} <= set(lightgcn)
    # the per-component losses were logged, and the saved model evaluates to the same figures
    state = json.loads(sorted(out.glob("checkpoint-*"))[-1].joinpath("trainer_state.json").read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert {"loss_rec", "loss_index", "loss_bpr", "loss_contrastive"} <= logged
    saved = load_saved_model(out)
    assert type(saved.model).__name__ == "ColaRecForGenerativeRecommendation"
    assert type(saved.processor).__name__ == "ColaRecProcessor"
    assert type(saved.processor.tokenizer).__name__ == "GenRecTokenizer"
    again = evaluate_saved_model(out, split="test", scratch_dir=str(tmp_path))
    assert again["ndcg@20"] == pytest.approx(result["test_ndcg@20"])
    assert "colarec" in again["protocol"]


def test_zero_weight_removes_a_loss_from_the_logs(tmp_path, data_dir):
    train_tiny(tmp_path, data_dir, contrastive_loss_weight=0.0, bpr_loss_weight=0.0, test_at_end=False)
    state = json.loads(sorted((tmp_path / "out").glob("checkpoint-*"))[-1].joinpath("trainer_state.json").read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert "loss_rec" in logged and "loss_index" in logged
    assert "loss_bpr" not in logged and "loss_contrastive" not in logged


def test_shipped_colarec_recipes_parse():
    for name, overrides in (("colarec-phones-cpu.yaml", []), ("colarec-phones.yaml", ["bf16=false"]), ("colarec-beauty.yaml", ["bf16=false"])):
        parsed = parse_recipe(f"training_args/{name}", overrides)
        assert parsed.recipe.model_family == "colarec" and parsed.recipe.semantic_id_method == "colarec-kmeans"
