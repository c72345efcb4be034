"""`accelerate launch` with 2 CPU processes (gloo): same entry point, evaluation gathered across ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genrec_fixtures import TINY_TIGER, random_table, write_beauty_slice
from hf_genrec.data import load_rec_dataset

# The command README.md documents for N CPU processes (`accelerate launch --cpu` starts only one).
LAUNCH_FLAGS = "--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no"
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", *LAUNCH_FLAGS.split(), "-m", "hf_genrec.cli.main"]
README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_the_tested_command():
    text = " ".join(README.read_text().replace("\\\n", " ").split())
    assert f"accelerate launch {LAUNCH_FLAGS} -m hf_genrec.cli.main train" in text


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_process_training_and_gathered_evaluation(tmp_path, data_dir):
    write_beauty_slice(data_dir, tmp_path / "data", users=101)  # odd: the last batch is uneven across ranks
    dataset = load_rec_dataset("beauty-slice", tmp_path / "data")
    random_table(dataset.catalogue.item_ids).save(tmp_path / "ids")
    recipe = {
        **TINY_TIGER,
        "dataset": "beauty-slice",
        "data_dir": str(tmp_path / "data"),
        "semantic_ids": str(tmp_path / "ids"),
        "output_dir": str(tmp_path / "out"),
        "max_steps": 4,
        "per_device_eval_batch_size": 16,
        "save_strategy": "no",
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the documented command, nothing else: use_cpu is in the recipe
    run = lambda cmd: subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)

    trained = last_json(run(LAUNCH + ["train", "--config", str(tmp_path / "recipe.yaml")]))
    assert trained["train_processes"] == 2  # training itself ran on two processes (gloo)
    assert trained["test_processes"] == 2
    assert sorted(trained["test_rows_per_process"]) == [50, 51]  # the users dealt out: no process decodes padding rows
    assert trained["test_users"] == 101

    single = last_json(run([sys.executable, "-m", "hf_genrec.cli.main", "evaluate", "--model", str(tmp_path / "out"),
                            "--split", "test", "--batch-size", "16"]))
    assert single["processes"] == 1
    for key in ("recall@5", "recall@10", "ndcg@5", "ndcg@10"):
        assert trained[f"test_{key}"] == pytest.approx(single[key], abs=1e-12)

    double = last_json(run(LAUNCH + ["evaluate", "--model", str(tmp_path / "out"), "--split", "test", "--batch-size", "16"]))
    assert double["processes"] == 2 and len(double["rows_per_process"]) == 2
    assert sorted(double["rows_per_process"]) == [50, 51]
    assert {k: double[k] for k in ("ndcg@10", "recall@10", "users")} == {k: single[k] for k in ("ndcg@10", "recall@10", "users")}
