"""A training run never loses a user's files: folders that are not the run's own are refused, a lock
refuses a second run into the same folder, and checkpoint rotation deletes only the run's own checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genrec_fixtures import cli_in_process, random_table, snapshot, tiny_tiger_recipe, write_beauty_slice
from hf_genrec.errors import ConfigError
from hf_genrec.output_folders import (
    RUN_MARKER_FILE,
    RunMarker,
    claim_output_folder,
    own_checkpoints,
    rotate_own_checkpoints,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SRC = Path(__file__).resolve().parents[1] / "src"
MINE, OTHER = RunMarker({"recipe": {"learning_rate": 0.01}}), RunMarker({"recipe": {"learning_rate": 0.02}})


def _checkpoint(folder: Path, step: int, marker: RunMarker | None) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights of step %d" % step)
    if marker is not None:
        marker.write(path)
    return path


# ---------------------------------------------------------------------------------------------------
# The folder claim, without training
# ---------------------------------------------------------------------------------------------------
def test_a_folder_with_a_users_files_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "config.json").write_text('{"mine": true}')
    (tmp_path / "errors.py").write_text("# my own module\n")
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match=r"output_dir is not empty \(config\.json, errors\.py\) and is not this recipe's run "
                                          r"\(it holds no run marker.*--overwrite-output-dir"):
        with claim_output_folder(tmp_path, MINE):
            pass
    assert snapshot(tmp_path) == before and not (tmp_path / RUN_MARKER_FILE).exists()


def test_empty_own_and_overwritten_folders_are_claimed(tmp_path):
    with claim_output_folder(tmp_path / "new", MINE) as folder:  # created
        assert json.loads((folder / RUN_MARKER_FILE).read_text())["fingerprint"] == MINE.fingerprint
    (folder / "model.safetensors").write_bytes(b"x")
    with claim_output_folder(folder, MINE):  # its own run: again, or resumed
        pass
    with claim_output_folder(folder, MINE, resume=True):
        pass
    with pytest.raises(ConfigError, match=r"not this recipe's run \(recipe key 'learning_rate' is 0\.01 there, 0\.02 here\)"):
        with claim_output_folder(folder, OTHER):
            pass
    with pytest.raises(ConfigError, match=r"cannot resume another run here: recipe key 'learning_rate' is 0\.01 there, 0\.02 here"):
        with claim_output_folder(folder, OTHER, resume=True, overwrite=True):
            pass
    (folder / "notes.txt").write_text("keep me")
    with claim_output_folder(folder, OTHER, overwrite=True):  # told to: the folder becomes the other run's
        pass
    assert (folder / "notes.txt").read_text() == "keep me"
    assert json.loads((folder / RUN_MARKER_FILE).read_text())["fingerprint"] == OTHER.fingerprint


def test_another_runs_checkpoints_are_refused_even_with_overwrite(tmp_path):
    _checkpoint(tmp_path, 2, OTHER)
    _checkpoint(tmp_path, 4, None)
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match=r"holds checkpoints that are not this run's \(checkpoint-2, checkpoint-4\)"):
        with claim_output_folder(tmp_path, MINE, overwrite=True):
            pass
    assert snapshot(tmp_path) == before
    # resuming a run saved before markers existed: its unmarked checkpoints are adopted, never another run's
    with pytest.raises(ConfigError, match=r"\(checkpoint-2\)"):
        with claim_output_folder(tmp_path, MINE, overwrite=True, resume=True):
            pass


@pytest.mark.parametrize("make", ["file", "under-a-file"])
def test_output_dir_that_is_a_file_or_cannot_be_created(tmp_path, make):
    (tmp_path / "f").write_text("x")
    target = tmp_path / "f" if make == "file" else tmp_path / "f" / "out"
    pattern = r"f: output_dir is a file, not a folder" if make == "file" else r"f/out: output_dir is not writable"
    with pytest.raises(ConfigError, match=pattern):
        with claim_output_folder(target, MINE):
            pass
    assert (tmp_path / "f").read_text() == "x"


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path):
    with claim_output_folder(tmp_path, MINE):
        with pytest.raises(ConfigError, match=rf"another hf-genrec run \(pid {os.getpid()}, started .*\) is writing to this folder"):
            with claim_output_folder(tmp_path, MINE):
                pass
    with claim_output_folder(tmp_path, MINE):  # released
        pass


def test_rotation_deletes_only_the_runs_own_checkpoints(tmp_path):
    for step in (1, 2, 3, 4):
        _checkpoint(tmp_path, step, MINE)
    foreign = [_checkpoint(tmp_path, 5, OTHER), _checkpoint(tmp_path, 6, None)]
    before = {p.name: snapshot(p) for p in foreign}
    rotate_own_checkpoints(tmp_path, MINE, limit=2, best=str(tmp_path / "checkpoint-1"))
    assert [p.name for p in own_checkpoints(tmp_path, MINE)] == ["checkpoint-1", "checkpoint-4"]  # best and newest kept
    assert {p.name: snapshot(p) for p in foreign} == before


# ---------------------------------------------------------------------------------------------------
# End to end: hf-genrec train
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("folders")
    tiny_tiger_recipe(root, data_dir, users=40, max_steps=4, save_steps=1, save_total_limit=1, test_at_end=False)
    return root


def _train(*args: str) -> tuple[int, str]:
    run = cli_in_process("train", *args)
    return run.code, run.err


def test_training_refuses_folders_that_are_not_its_own_and_rotates_only_its_checkpoints(setup):
    root = setup
    config = str(root / "r.yaml")
    user = root / "user"
    user.mkdir()
    (user / "config.json").write_text('{"mine": true}')
    before = snapshot(user)
    code, err = _train("--config", config, "--output-dir", str(user))
    assert code == 2 and err.strip().splitlines()[-1].startswith("hf-genrec: error: ") and "output_dir is not empty" in err
    assert "Traceback" not in err and snapshot(user) == before

    code, err = _train("--config", config, "output_dir=")
    assert code == 2 and "output_dir is empty" in err and not Path("trainer_output").exists()

    # the run's own folder: trained, trained again, resumed; each checkpoint carries the marker
    out = root / "out"
    assert _train("--config", config)[0] == 0
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-4"]  # save_total_limit 1
    marker = json.loads((out / RUN_MARKER_FILE).read_text())
    assert json.loads((out / "checkpoint-4" / RUN_MARKER_FILE).read_text())["fingerprint"] == marker["fingerprint"]
    foreign = _checkpoint(out, 2, OTHER)  # another run's checkpoint, copied in: refused before any work
    code, err = _train("--config", config)
    assert code == 2 and "holds checkpoints that are not this run's (checkpoint-2)" in err
    assert (foreign / "model.safetensors").read_bytes() == b"weights of step 2"
    foreign.rename(root / "moved-away")
    assert _train("--config", config)[0] == 0  # its own folder: trained again, then resumed
    assert _train("--config", config, "--resume-from-checkpoint")[0] == 0

    code, err = _train("--config", config, "learning_rate=0.02", "--resume-from-checkpoint")
    assert code == 2 and "cannot resume another run here: recipe key 'learning_rate' is 0.01 there, 0.02 here" in err
    (checkpoint,) = out.glob("checkpoint-*")
    code, err = _train("--config", config, "--output-dir", str(root / "elsewhere"), "learning_rate=0.02",
                       f"--resume-from-checkpoint={checkpoint}")
    assert code == 2 and "cannot resume from another run's checkpoint: recipe key 'learning_rate'" in err

    # told to overwrite: files of the same names are replaced, the user's others stay
    (user / "notes.txt").write_text("keep me")
    assert _train("--config", config, "--output-dir", str(user), "--overwrite-output-dir")[0] == 0
    assert (user / "notes.txt").read_text() == "keep me" and (user / "model.safetensors").exists()


def test_another_run_resumed_on_another_table_or_dataset_is_refused(setup, tmp_path, data_dir):
    root = setup
    values = yaml.safe_load((root / "r.yaml").read_text())
    values["output_dir"] = str(tmp_path / "out")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(values))
    assert _train("--config", str(tmp_path / "r.yaml"))[0] == 0
    from hf_genrec.data import load_rec_dataset

    random_table(load_rec_dataset("beauty-slice", root / "data").catalogue.item_ids, seed=1).save(tmp_path / "ids")
    code, err = _train("--config", str(tmp_path / "r.yaml"), f"semantic_ids={tmp_path / 'ids'}", "--resume-from-checkpoint")
    assert code == 2 and "cannot resume another run here: its semantic id table differs" in err
    write_beauty_slice(data_dir, tmp_path / "data", users=41)
    code, err = _train("--config", str(tmp_path / "r.yaml"), f"data_dir={tmp_path / 'data'}", "--resume-from-checkpoint")
    assert code == 2 and "cannot resume another run here: its dataset differs" in err


def test_two_runs_into_one_folder_at_once(setup, tmp_path):
    """The second run is refused with a clear message while the first holds the folder; the first finishes.
    (The lock is flock's: a killed run leaves none behind, see test_resume.py's killed run.)"""
    root = setup
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    args = ["--config", str(root / "r.yaml"), "--output-dir", str(tmp_path / "out"), "max_steps=30", "save_strategy=no"]
    first = subprocess.Popen([sys.executable, "-m", "hf_genrec.cli.main", "train", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (tmp_path / "out" / RUN_MARKER_FILE).exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    code, err = _train(*args)
    out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err[-2000:]
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        f"hf-genrec: error: {tmp_path / 'out'}: another hf-genrec run (pid {first.pid}"), err[-1000:]
    assert json.loads(out.strip().splitlines()[-1])["validation_users"] == 40
