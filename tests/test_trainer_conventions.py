"""GenRecTrainer keeps Trainer's conventions: compute_metrics gets the rankings, predict() returns them,
evaluation advances a progress bar on stderr (unless disable_tqdm), unusable options are refused."""

from __future__ import annotations

import numpy as np
import pytest

from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import ConfigError, InvalidInputError
from hf_genrec.inference.saved_models import load_saved_model
from hf_genrec.recipes.training_arguments import GenRecTrainingArguments
from hf_genrec.training.trainer import GenRecTrainer


@pytest.fixture(scope="module")
def tiger(trained_checkpoints):
    saved = load_saved_model(trained_checkpoints["tiger"])
    dataset = load_rec_dataset("beauty-slice", trained_checkpoints["data"])
    return saved, dataset.splits(20)["test"].select(range(40))


def make_trainer(saved, tmp_path, **kwargs) -> GenRecTrainer:
    options = dict(output_dir=str(tmp_path), per_device_eval_batch_size=16, generation_num_beams=10, metric_ks=[5, 10],
                   use_cpu=True, report_to="none", disable_tqdm=True)
    trainer_kwargs = {k: kwargs.pop(k) for k in ("compute_metrics", "preprocess_logits_for_metrics") if k in kwargs}
    return GenRecTrainer(model=saved.model, args=GenRecTrainingArguments(**{**options, **kwargs}), processor=saved.processor,
                         **trainer_kwargs)


def test_compute_metrics_receives_the_rankings(tiger, tmp_path, one_torch_thread):
    saved, rows = tiger
    seen = []

    def hit_at_1(prediction):
        seen.append(prediction)
        return {"hit@1": float(np.mean(prediction.predictions[:, 0] == prediction.label_ids[:, 0]))}

    metrics = make_trainer(saved, tmp_path, compute_metrics=hit_at_1).evaluate(rows, metric_key_prefix="test")
    (prediction,) = seen
    assert prediction.predictions.shape == (40, 10) and prediction.label_ids.shape[0] == 40
    assert prediction.label_ids[:, 0].tolist() == [t[0] for t in rows["targets"]]
    assert metrics["test_hit@1"] == pytest.approx(np.mean(prediction.predictions[:, 0] == prediction.label_ids[:, 0]))
    assert metrics["test_recall@10"] == pytest.approx(
        np.mean([t[0] in p for t, p in zip(rows["targets"], prediction.predictions.tolist())])
    )

    with pytest.raises(InvalidInputError, match="compute_metrics must return a dict of metric name -> number, got list"):
        make_trainer(saved, tmp_path, compute_metrics=lambda p: [1.0]).evaluate(rows)
    with pytest.raises(ConfigError, match="preprocess_logits_for_metrics is not used; compute_metrics receives the rankings"):
        make_trainer(saved, tmp_path, preprocess_logits_for_metrics=lambda logits, labels: logits)


def test_predict_returns_rankings_not_logits(tiger, tmp_path, one_torch_thread):
    saved, rows = tiger
    trainer = make_trainer(saved, tmp_path)
    output = trainer.predict(rows)
    assert output.predictions.shape == (40, 10)
    assert np.isin(output.predictions, saved.processor.item_ids).all()
    assert output.label_ids[:, 0].tolist() == [t[0] for t in rows["targets"]]
    assert set(output.metrics) >= {"test_ndcg@10", "test_recall@5", "test_users"} and output.metrics["test_users"] == 40
    scores = trainer.last_rankings.scores.numpy()
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    assert trainer.evaluate(rows, metric_key_prefix="test")["test_ndcg@10"] == output.metrics["test_ndcg@10"]


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_evaluation_progress_bar_on_stderr(tiger, tmp_path, capfd, disable_tqdm, one_torch_thread):
    saved, rows = tiger
    make_trainer(saved, tmp_path, disable_tqdm=disable_tqdm).evaluate(rows)
    out, err = capfd.readouterr()
    bar = "3/3" in err  # 40 rows in batches of 16
    assert bar is not disable_tqdm and "3/3" not in out


def test_hub_strategies_that_upload_pickles_are_refused(tiger, tmp_path):
    saved, _ = tiger
    with pytest.raises(ConfigError, match="hub_strategy 'checkpoint' uploads optimizer and RNG states"):
        make_trainer(saved, tmp_path, push_to_hub=True, hub_model_id="org/x", hub_strategy="checkpoint")


def test_a_time_budget_stops_training_after_an_evaluation_and_a_save(tmp_path, data_dir):
    """max_train_minutes: the first step past the budget evaluates and saves, then training ends."""
    import json

    import yaml

    from genrec_fixtures import write_beauty_slice
    from hf_genrec.training.pipeline import train_from_recipe
    from hf_genrec.training.recipe_loading import parse_recipe

    write_beauty_slice(data_dir, tmp_path / "data", users=60)
    recipe = {
        "model_family": "sasrec", "dataset": "beauty-slice", "data_dir": str(tmp_path / "data"), "max_history": 10,
        "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1, "output_dir": str(tmp_path / "out"),
        "use_cpu": True, "num_train_epochs": 50, "per_device_train_batch_size": 8, "eval_strategy": "epoch",
        "save_strategy": "epoch", "load_best_model_at_end": True, "max_train_minutes": 1e-6, "report_to": "none",
        "disable_tqdm": True, "test_at_end": False,
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    train_from_recipe(parse_recipe(tmp_path / "r.yaml"))
    checkpoints = sorted((tmp_path / "out").glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-1"]  # stopped after the first step, and saved it
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    assert state["global_step"] == 1 and any("eval_ndcg@10" in entry for entry in state["log_history"])
    with pytest.raises(ConfigError, match="max_train_minutes must be > 0"):
        parse_recipe(tmp_path / "r.yaml", ["max_train_minutes=0"])
