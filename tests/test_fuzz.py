"""Fuzzing: random corruptions of a tiny dataset, recipe and checkpoint either give a correct result or
one ``hf-genrec: error:`` line with exit status 2 -- never a traceback, never a changed input file.

Bounded: 24 examples a test (``HF_GENREC_FUZZ_EXAMPLES`` sets another number, e.g. a few hundred once
after a change), derandomised (the same examples every run), each command run in-process through
``hf_genrec.cli.main.main``; an exception escaping it fails the test with the falsifying example.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genrec_fixtures import cli_in_process, snapshot, tiny_tiger_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FUZZ = settings(max_examples=int(os.environ.get("HF_GENREC_FUZZ_EXAMPLES", 24)), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_counter = itertools.count()


def run(*argv: str) -> tuple[int, dict | None]:
    """``hf-genrec argv`` in-process: exit code and JSON result; anything but a result or one error line fails."""
    outcome = cli_in_process(*argv)
    if outcome.code == 0:
        return 0, outcome.result
    outcome.error_line()
    return outcome.code, None


@pytest.fixture(scope="module")
def base(tmp_path_factory, data_dir):
    """A 30-user Beauty slice, its ID table, a recipe and the tiny TIGER it trains."""
    root = tmp_path_factory.mktemp("fuzz")
    recipe = tiny_tiger_recipe(root, data_dir, users=30, output_dir=str(root / "model"), max_steps=2, save_strategy="no",
                               num_user_buckets=8)
    assert run("train", "--config", str(recipe))[0] == 0
    return root


# ---------------------------------------------------------------------------------------------------
# Corruptions
# ---------------------------------------------------------------------------------------------------
BYTES = [b"", b"-", b"_", b"0", b"9", b" ", b"\n", b"{", b"}", b'"', b",", b"\xff", b"\x00", b"1_0", b"-1", b"99999999999999999999", b"nan"]
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.sampled_from([2**63, -(2**31), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4), st.lists(st.integers(-2, 9), max_size=3),
)


@st.composite
def byte_edit(draw, size: int):
    """(kind, position, payload) for a file of ``size`` bytes."""
    kind = draw(st.sampled_from(["truncate", "replace", "insert", "delete-file", "empty", "duplicate-line", "drop-line"]))
    return kind, draw(st.integers(0, max(size - 1, 0))), draw(st.sampled_from(BYTES))


def apply_byte_edit(path: Path, edit) -> None:
    kind, position, payload = edit
    data = path.read_bytes()
    if kind == "truncate":
        path.write_bytes(data[:position])
    elif kind == "replace":
        path.write_bytes(data[:position] + payload + data[position + 1:])
    elif kind == "insert":
        path.write_bytes(data[:position] + payload + data[position:])
    elif kind == "delete-file":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        lines = data.splitlines(keepends=True)
        index = min(position, len(lines) - 1) if lines else 0
        if lines and kind == "duplicate-line":
            lines.insert(index, lines[index])
        elif lines:
            del lines[index]
        path.write_bytes(b"".join(lines))


def apply_json_edit(path: Path, key_index: int, value) -> None:
    data = json.loads(path.read_text())
    if isinstance(data, dict) and data:
        key = sorted(data)[key_index % len(data)]
        data[key] = value
    path.write_text(json.dumps(data))


# ---------------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), name=st.sampled_from(["sequences.txt", "items.jsonl"]))
def test_fuzzed_dataset(base, tmp_path, data, name):
    copy = tmp_path / f"data-{next(_counter)}"
    shutil.copytree(base / "data", copy)
    target = copy / "beauty-slice" / name
    apply_byte_edit(target, data.draw(byte_edit(target.stat().st_size)))
    before, model_before = snapshot(copy), snapshot(base / "model")
    code, result = run("data", "stats", "--dataset", "beauty-slice", "--data-dir", str(copy))
    if code == 0:
        assert result["users"] >= 1 and result["items"] >= 1
    code, result = run("evaluate", "--model", str(base / "model"), "--dataset", "beauty-slice", "--data-dir", str(copy), "--no-record")
    if code == 0:
        assert result["users"] >= 1 and all(0 <= result[k] <= 1 for k in result if "@" in k)
    assert snapshot(copy) == before and snapshot(base / "model") == model_before


# ---------------------------------------------------------------------------------------------------
# Checkpoint
# ---------------------------------------------------------------------------------------------------
CHECKPOINT_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "processor_config.json",
                    "semantic_ids.json", "recipe.yaml", "generation_config.json"]


@FUZZ
@given(data=st.data(), name=st.sampled_from(CHECKPOINT_FILES), as_json=st.booleans())
def test_fuzzed_checkpoint(base, tmp_path, data, name, as_json):
    model = tmp_path / f"model-{next(_counter)}"
    shutil.copytree(base / "model", model)
    target = model / name
    if as_json and name.endswith(".json") and name != "tokenizer.json":
        apply_json_edit(target, data.draw(st.integers(0, 100)), data.draw(JSON_VALUES))
    else:
        apply_byte_edit(target, data.draw(byte_edit(target.stat().st_size)))
    before = snapshot(model)
    catalogue = {int(line.split('"item_id": ')[1].split(",")[0].split("}")[0])
                 for line in (base / "data" / "beauty-slice" / "items.jsonl").read_text().splitlines()}
    code, result = run("recommend", "--model", str(model), "--history", *map(str, sorted(catalogue)[:3]), "--top-k", "3")
    if code == 0:
        assert len(result["recommendations"]) == 3 and all(r["item_id"] in catalogue for r in result["recommendations"])
    code, result = run("evaluate", "--model", str(model), "--data-dir", str(base / "data"))
    if code == 0:
        assert result["users"] == 30 and all(0 <= result[k] <= 1 for k in result if "@" in k)
    after = snapshot(model)
    assert {k: v for k, v in after.items() if k in before} == before  # pre-existing files unchanged
    assert set(after) - set(before) <= {"evaluations.json"}


# ---------------------------------------------------------------------------------------------------
# Recipe
# ---------------------------------------------------------------------------------------------------
RECIPE_KEYS = ["d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers", "dropout_rate", "num_user_buckets",
               "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "generation_num_beams", "metric_ks",
               "max_steps", "num_train_epochs", "seed", "max_history", "weight_decay", "warmup_steps", "eval_max_users",
               "dataset", "semantic_ids", "model_family", "metric_for_best_model", "load_best_model_at_end", "test_at_end",
               "save_total_limit", "logging_steps", "no_such_key"]
RECIPE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 24), st.sampled_from([0.0, -0.5, 1.5, 1e-3, math.nan, math.inf]),
    st.sampled_from(["", "x", "ndcg@10", "eval_ndcg@5", "recall@3", "tiger", "colarec", "[", "beauty-slice"]),
    st.lists(st.integers(-1, 12), max_size=3),
)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(RECIPE_KEYS), RECIPE_VALUES, st.booleans()), min_size=1, max_size=3))
def test_fuzzed_recipe(base, tmp_path, edits):
    values = yaml.safe_load((base / "r.yaml").read_text())
    for key, value, remove in edits:
        if remove:
            values.pop(key, None)
        else:
            values[key] = value
    if values.get("max_steps", -1) in (-1, None) or values.get("model_family") == "colarec":
        values["max_steps"] = 2  # bounded: no epoch over the slice, no ColaRec ID build
    values["output_dir"] = str(tmp_path / f"out-{next(_counter)}")
    recipe = tmp_path / "fuzzed.yaml"
    recipe.write_text(yaml.safe_dump(values))
    inputs = {path: snapshot(path) for path in (base / "data", base / "ids")}
    recipe_bytes = recipe.read_bytes()
    code, result = run("train", "--config", str(recipe))
    if code == 0:
        assert all(0 <= result[k] <= 1 for k in result if "@" in k) and result["validation_users"] >= 1
        assert (Path(values["output_dir"]) / "model.safetensors").exists()
    assert {path: snapshot(path) for path in inputs} == inputs and recipe.read_bytes() == recipe_bytes
