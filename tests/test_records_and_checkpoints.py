"""Records stay true and checkpoints load exactly or not at all.

* ``hf-genrec evaluate`` keeps its records in ``evaluations.json``, one per (dataset, split, protocol,
  catalogue); the training's own test record (``eval_results.json``, the card's model-index) is
  never replaced.
* A model whose catalogue is not the dataset's is an error (or, with the flag, says so).
* A checkpoint whose weights do not fit its config, or whose files are cut short or corrupt, ends in
  one ``hf-genrec: error:`` line with exit status 2, and every file stays as it was.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file

from genrec_fixtures import cli_in_process as cli, random_table, snapshot, tiny_tiger_recipe, write_beauty_slice
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import CheckpointMismatchError, ConfigError
from hf_genrec.output_folders import RUN_MARKER_FILE
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A tiny TIGER trained on 40 Beauty users (checkpoints kept), and a 15-user dataset with a smaller catalogue."""
    root = tmp_path_factory.mktemp("records")
    recipe = tiny_tiger_recipe(root, data_dir, users=40, max_steps=4, save_steps=2, eval_strategy="steps", eval_steps=2,
                               load_best_model_at_end=True)  # no metric_for_best_model: ndcg@10
    write_beauty_slice(data_dir, root / "data", users=15, name="beauty-small")
    result = train_from_recipe(parse_recipe(recipe))
    return root, result


def test_a_recipe_without_metric_for_best_model_selects_on_ndcg(trained):
    root, result = trained
    state = json.loads(max((root / "out").glob("checkpoint-*"), key=lambda p: int(p.name[11:])).joinpath("trainer_state.json").read_text())
    assert state["best_metric"] is not None and result["test_users"] == 40
    assert parse_recipe(root / "r.yaml").training_args.metric_for_best_model == "ndcg@10"


def test_a_checkpoint_carries_the_recipe_and_evaluates_as_the_run_would(trained):
    """Without its recipe a checkpoint needed --dataset and was decoded with 20 beams instead of the recipe's 10."""
    root, _ = trained
    checkpoints = sorted((root / "out").glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    assert checkpoints and all((c / "recipe.yaml").read_text() == (root / "out" / "recipe.yaml").read_text() for c in checkpoints)
    run = cli("evaluate", "--model", str(checkpoints[-1]), "--split", "validation", "--no-record")
    assert run.code == 0 and run.result["num_beams"] == 10 and run.result["dataset"] == "beauty-slice"


def test_a_recipe_without_a_beam_width_derives_it_from_its_cut_offs(trained, tmp_path):
    """Twice the largest cut-off, at least 20: top-20 lists with 20 beams came out short (a seen item in the beam)."""
    from hf_genrec.recipes.training_arguments import GenRecTrainingArguments

    derived = {tuple(ks): GenRecTrainingArguments(output_dir=str(tmp_path), metric_ks=ks, report_to="none").generation_num_beams
               for ks in ([5, 10], [5, 10, 20], [50])}
    assert derived == {(5, 10): 20, (5, 10, 20): 40, (50,): 100}
    assert GenRecTrainingArguments(output_dir=str(tmp_path), metric_ks=[5, 10, 20], generation_num_beams=25,
                                   report_to="none").generation_num_beams == 25
    root, _ = trained
    model = tmp_path / "model"
    shutil.copytree(root / "out", model, ignore=shutil.ignore_patterns("checkpoint-*"))
    recipe = yaml.safe_load((model / "recipe.yaml").read_text())
    del recipe["generation_num_beams"]
    (model / "recipe.yaml").write_text(yaml.safe_dump({**recipe, "metric_ks": [5, 10, 20]}))
    assert cli("evaluate", "--model", str(model), "--split", "validation", "--no-record").result["num_beams"] == 40


def test_evaluation_records_never_replace_the_training_record(trained, tmp_path):
    from hf_genrec.hub import render_model_card

    root, result = trained
    model = tmp_path / "model"
    shutil.copytree(root / "out", model)
    training_record = (model / "eval_results.json").read_bytes()
    assert json.loads(training_record)["written_by"] == "hf-genrec train"
    for argv in (["--split", "validation"], ["--split", "test"], ["--split", "validation"],
                 ["--dataset", "beauty-small", "--allow-catalogue-mismatch"]):
        assert cli("evaluate", "--model", str(model), *argv).result["invalid_rate"] == 0
    assert (model / "eval_results.json").read_bytes() == training_record
    records = json.loads((model / "evaluations.json").read_text())
    assert [(r["dataset"], r["split"]) for r in records] == [("beauty-slice", "test"), ("beauty-slice", "validation"), ("beauty-small", "test")]
    test = next(r for r in records if r["dataset"] == "beauty-slice" and r["split"] == "test")
    assert test["ndcg@10"] == pytest.approx(result["test_ndcg@10"]) and test["catalogue"] == json.loads(training_record)["catalogue"]
    small = records[-1]
    assert small["catalogue"]["matches_dataset"] is False and small["catalogue"]["model_items_not_in_dataset"] > 0
    assert "full-catalogue" not in small["protocol"] and "ranking over the model's catalogue" in small["protocol"]
    # the card's model-index is the training's test record alone
    card = render_model_card(model, "tiger")
    assert {(r.dataset_type, r.dataset_split) for r in card.data.eval_results} == {("beauty-slice", "test")}
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}["NDCG@10"] == pytest.approx(result["test_ndcg@10"])


def test_a_model_of_another_catalogue_is_an_error(trained, tmp_path):
    root, _ = trained
    before = snapshot(root / "out")
    message = cli("evaluate", "--model", str(root / "out"), "--dataset", "beauty-small").error_line()
    assert "the model ranks a catalogue of" in message and "dataset 'beauty-small' has" in message
    assert "--allow-catalogue-mismatch" in message and snapshot(root / "out") == before


def test_training_with_a_table_larger_than_the_dataset_is_refused(trained, tmp_path):
    root, _ = trained
    items = load_rec_dataset("beauty-slice", root / "data").catalogue.item_ids
    random_table(items + [10**9]).save(tmp_path / "ids")
    values = {**yaml.safe_load((root / "r.yaml").read_text()), "semantic_ids": str(tmp_path / "ids"), "output_dir": str(tmp_path / "out")}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(CheckpointMismatchError, match=r"the semantic-ID table has 1 items that are not in dataset 'beauty-slice', e\.g\. \[1000000000\]"):
        train_from_recipe(parse_recipe(tmp_path / "r.yaml"))


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _misshapen_weights(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    name = next(k for k in tensors if k.endswith("wi.weight"))
    tensors[name] = tensors[name][:-1]
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


CHECKPOINT_CASES = {
    # id: (edit of the model folder, message pattern)
    "weights-truncated": (lambda d: _truncate(d / "model.safetensors"), r"model\.safetensors: unreadable safetensors file"),
    "weights-missing": (lambda d: (d / "model.safetensors").unlink(), r"no weights \(model\.safetensors\) in the folder"),
    "weights-misshapen": (_misshapen_weights, r"1 tensors of another shape, e\.g\. .*wi\.weight \(saved \[63, 32\], model \[64, 32\]\)"),
    "config-two-layers": (lambda d: _edit_json(d / "config.json", num_layers=2),
                          r"the saved weights do not fit the model that config\.json describes: \d+ tensors missing, e\.g\. \['encoder\.block\.1\."),
    "config-model-type-colarec": (lambda d: _edit_json(d / "config.json", model_type="colarec"),
                                  r"processor_config\.json: saved for 'TigerProcessor', not ColaRecProcessor"),
    "config-model-type-t5": (lambda d: _edit_json(d / "config.json", model_type="t5"),
                             r"config\.json: model_type 't5' is not a recommender family of hf_genrec"),
    "config-duplicate-key": (lambda d: (d / "config.json").write_text('{"model_type": "tiger", "model_type": "t5"}'),
                             r"config\.json: duplicate key 'model_type'"),
    "tokenizer-truncated": (lambda d: _truncate(d / "tokenizer.json"), r"cannot load the processor \(JSONDecodeError"),
    "recipe-invalid-yaml": (lambda d: (d / "recipe.yaml").write_text("max_history: [\n"), r"recipe\.yaml: invalid YAML \(line 2"),
    "recipe-duplicate-key": (lambda d: (d / "recipe.yaml").write_text("max_history: 5\nmax_history: 7\n"),
                             r"recipe\.yaml: invalid YAML \(line 2: duplicate key 'max_history' \(first on line 1\)\)"),
    "recipe-bad-value": (lambda d: _edit_recipe(d, max_history="long"), r"recipe\.yaml, field 'max_history': expected a positive integer, got 'long'"),
}


def _edit_recipe(folder: Path, **changes) -> None:
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    recipe.update(changes)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_broken_checkpoints_give_one_line_errors(trained, tmp_path, case):
    root, _ = trained
    edit, pattern = CHECKPOINT_CASES[case]
    model = tmp_path / "model"
    shutil.copytree(root / "out", model, ignore=shutil.ignore_patterns("checkpoint-*"))
    edit(model)
    before = snapshot(model)
    command = ("evaluate", "--model", str(model), "--max-users", "5") if case.startswith("recipe") else (
        "recommend", "--model", str(model), "--history", "1", "2", "--top-k", "3")
    message = cli(*command).error_line()
    assert re.search(pattern, message), message
    assert snapshot(model) == before


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--max-users", "-5"], "max-users must be a positive integer, got -5"),
    (["evaluate", "--batch-size", "0"], "batch-size must be a positive integer, got 0"),
    (["evaluate", "--num-beams", "0"], "num-beams must be a positive integer, got 0"),
    (["evaluate", "--num-beams", "5"], "metric_ks [5, 10] need top-10 lists, more than generation_num_beams=5 beams can give"),
    (["recommend", "--history", "1", "--top-k", "0"], "top-k must be a positive integer, got 0"),
    (["recommend", "--history", "1", "--num-beams", "-1"], "num-beams must be a positive integer, got -1"),
])
def test_bad_evaluate_and_recommend_arguments(trained, argv, message):
    root, _ = trained
    before = snapshot(root / "out")
    assert message in cli(argv[0], "--model", str(root / "out"), *argv[1:]).error_line()
    assert snapshot(root / "out") == before


def test_a_record_that_cannot_be_kept_is_reported_before_the_evaluation(trained, tmp_path):
    root, _ = trained
    model = tmp_path / "model"
    shutil.copytree(root / "out", model, ignore=shutil.ignore_patterns("checkpoint-*"))
    (model / "evaluations.json").mkdir()  # a folder where the records file should be
    run = cli("evaluate", "--model", str(model))
    assert "evaluation records not found" in run.error_line() and not run.out
    (model / "evaluations.json").rmdir()
    (model / "evaluations.json").write_text("{not json")
    assert "evaluations.json, line 1: invalid JSON" in cli("evaluate", "--model", str(model)).error_line()
    assert cli("evaluate", "--model", str(model), "--no-record").result["users"] == 40
    assert (model / "evaluations.json").read_text() == "{not json"


def test_resuming_a_checkpoint_of_another_shape_names_the_tensors(trained, tmp_path):
    """A run saved before run markers (adopted with --overwrite-output-dir) whose weights do not fit the recipe."""
    root, _ = trained
    legacy = tmp_path / "legacy"
    shutil.copytree(root / "out", legacy)
    for marker in legacy.rglob(RUN_MARKER_FILE):
        marker.unlink()
    values = {**yaml.safe_load((root / "r.yaml").read_text()), "output_dir": str(legacy), "d_ff": 128}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=r"output_dir is not empty .*\(it holds no run marker"):
        train_from_recipe(parse_recipe(tmp_path / "r.yaml"), resume_from_checkpoint=True)
    message = cli("train", "--config", str(tmp_path / "r.yaml"), "--resume-from-checkpoint", "--overwrite-output-dir").error_line()
    assert "the saved weights do not fit the model that the recipe describes" in message
    assert "wi.weight (saved [64, 32], model [128, 32])" in message
