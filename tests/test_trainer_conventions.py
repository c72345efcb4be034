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
