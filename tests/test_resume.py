"""Nothing lost to a crash: atomic writes keep old files whole, and a killed training run resumes
from its last checkpoint to the very weights and metrics of an uninterrupted run."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from genrec_fixtures import TINY_TIGER, random_table, write_beauty_slice
from hf_genrec import io_utils
from hf_genrec.io_utils import atomic_path, atomic_save_tensors, atomic_write_json, atomic_write_text
from hf_genrec.output_folders import RUN_MARKER_FILE
from hf_genrec.semantic_ids.id_table import SemanticIdTable

SRC = Path(__file__).resolve().parents[1] / "src"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------------
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_failure_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "table.json"
    atomic_write_json(target, {"version": 1})
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"version": 2, "codes": [[1, 2', encoding="utf-8")  # half of the new file
            raise RuntimeError("disk on fire")
    assert json.loads(target.read_text()) == {"version": 1}
    assert _leftovers(tmp_path) == []  # the half-written temporary file is removed

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(target, {"version": 3, "bad": Unserialisable()})
    assert json.loads(target.read_text()) == {"version": 1}

    tensors = tmp_path / "cache.safetensors"
    atomic_save_tensors(tensors, {"embeddings": torch.ones(3, 2)})
    with pytest.raises(AttributeError):
        atomic_save_tensors(tensors, {"embeddings": torch.zeros(3, 2), "broken": "not a tensor"})
    assert torch.equal(load_file(str(tensors))["embeddings"], torch.ones(3, 2))
    assert _leftovers(tmp_path) == []


def test_failure_while_saving_tensors_keeps_the_old_file(tmp_path, monkeypatch):
    import safetensors.torch

    path = tmp_path / "embeddings.safetensors"
    atomic_save_tensors(path, {"embeddings": torch.ones(4, 2)})

    def crash_halfway(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{")  # a truncated header
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", crash_halfway)
    with pytest.raises(OSError, match="No space left"):
        atomic_save_tensors(path, {"embeddings": torch.zeros(4, 2)})
    assert torch.equal(load_file(str(path))["embeddings"], torch.ones(4, 2))
    assert _leftovers(tmp_path) == []


def test_process_killed_mid_write_keeps_the_old_file(tmp_path):
    """SIGKILL while the new content is half written: the target still holds the old content."""
    target = tmp_path / "export.txt"
    atomic_write_text(target, "old content\n")
    script = (  # io_utils loaded on its own: importing the whole package would take seconds
        "import importlib.util, os, signal, sys\n"
        "spec = importlib.util.spec_from_file_location('io_utils', sys.argv[2])\n"
        "io_utils = importlib.util.module_from_spec(spec); spec.loader.exec_module(io_utils)\n"
        "with io_utils.atomic_path(sys.argv[1]) as tmp:\n"
        "    with open(tmp, 'w') as handle:\n"
        "        handle.write('new cont'); handle.flush()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(target), io_utils.__file__], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "old content\n"
    # the orphan temporary file is hidden (dot-prefixed) and never mistaken for the target
    assert all(name.startswith(".export.txt.") for name in _leftovers(tmp_path))


def _fail_at_rename(monkeypatch):
    def refuse(src, dst):
        raise OSError(f"simulated crash before renaming {src} over {dst}")

    monkeypatch.setattr(io_utils.os, "replace", refuse)


def test_package_writers_go_through_the_atomic_path(tmp_path, monkeypatch):
    """ID tables, item-tokenizer files, embedding caches and evaluation exports keep their old
    version when the write is interrupted (the rename is the only step that touches the target)."""
    from hf_genrec.item_encoders import encode_item_texts
    from hf_genrec.item_tokenizers.rqkmeans import RQKMeansConfig, RQKMeansTokenizer
    from hf_genrec.training.pipeline import write_eval_results

    old_table = random_table(list(range(1, 21)), seed=0)
    old_table.save(tmp_path / "ids")
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    rqk = RQKMeansTokenizer(RQKMeansConfig(num_levels=2, codebook_size=4, num_iters=2))
    rqk.fit(x).build_table(list(range(1, 21)), x)
    rqk.save_pretrained(tmp_path / "rqk")
    before = {p.name: p.read_bytes() for p in (tmp_path / "rqk").iterdir()}

    class Encoder(torch.nn.Module):
        def encode(self, texts, **kwargs):
            return torch.arange(len(texts) * 3, dtype=torch.float).reshape(len(texts), 3)

    cache = tmp_path / "cache"
    first = encode_item_texts(["a", "b"], Encoder(), cache_dir=cache, show_progress_bar=False)
    (cached,) = list(cache.iterdir())
    cached_bytes = cached.read_bytes()

    class Args:
        generation_num_beams = 4

    class Data:
        name = "toy"

        def describe_protocol(self, max_history):
            return "leave-one-out"

    write_eval_results(tmp_path, Data(), "test", {"ndcg@10": 0.5}, 20, Args())
    export = (tmp_path / "eval_results.json").read_text()

    _fail_at_rename(monkeypatch)
    with pytest.raises(OSError, match="simulated crash"):
        random_table(list(range(1, 21)), seed=1).save(tmp_path / "ids")
    assert SemanticIdTable.load(tmp_path / "ids") == old_table
    with pytest.raises(OSError, match="simulated crash"):
        RQKMeansTokenizer(RQKMeansConfig(num_levels=2, codebook_size=3, num_iters=2)).fit(x * 2).save_pretrained(tmp_path / "rqk")
    assert {p.name: p.read_bytes() for p in (tmp_path / "rqk").iterdir()} == before
    with pytest.raises(OSError, match="simulated crash"):
        encode_item_texts(["a", "b", "c"], Encoder(), cache_dir=cache, show_progress_bar=False)
    assert [p.name for p in cache.iterdir()] == [cached.name] and cached.read_bytes() == cached_bytes
    with pytest.raises(OSError, match="simulated crash"):
        write_eval_results(tmp_path, Data(), "test", {"ndcg@10": 0.9}, 20, Args())
    assert (tmp_path / "eval_results.json").read_text() == export
    assert torch.equal(first, torch.tensor([[0.0, 1, 2], [3, 4, 5]]))
    assert not list(tmp_path.rglob("*.tmp"))


# ---------------------------------------------------------------------------------------------------
# Static check: files are written through hf_genrec.io_utils
# ---------------------------------------------------------------------------------------------------
WRITE_METHODS = {"write_text", "write_bytes", "savefig", "save_file", "to_csv", "to_json", "to_parquet"}


def _non_atomic_writes(text: str, label: str) -> list[str]:
    """``file:line (function): call`` for writes outside an ``atomic_path`` block."""
    tree = ast.parse(text)
    found: list[str] = []

    def visit(node: ast.AST, function: str, atomic: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.With):
            atomic = atomic or any(
                isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id", getattr(item.context_expr.func, "attr", "")) == "atomic_path"
                for item in node.items
            )
        if isinstance(node, ast.Call) and not atomic:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            writes = name in WRITE_METHODS or name in ("save", "dump") and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") in ("torch", "np", "numpy", "json", "pickle")
            if name == "open" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                writes = any(c in str(node.args[1].value) for c in "wax")
            if writes:
                found.append(f"{label}:{node.lineno} ({function}): {name}(...)")
        for child in ast.iter_child_nodes(node):
            visit(child, function, atomic)

    visit(tree, "<module>", False)
    return found


KNOWN_NON_ATOMIC = {"src/hf_genrec/training/trainer.py": "plot_loss_curves"}


def _all_non_atomic_writes() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name != "io_utils.py":
            out += _non_atomic_writes(path.read_text(encoding="utf-8"), str(path.relative_to(SRC.parent)))
    return out


def test_write_scanner_tells_atomic_from_direct_writes():
    direct = "def f(p, fig, x):\n    p.write_text('x')\n    fig.savefig(p)\n    open(p, 'wb')\n    torch.save(x, p)\n    json.dump(x, p)\n"
    assert [f.split(" ", 1)[0] for f in _non_atomic_writes(direct, "m.py")] == ["m.py:2", "m.py:3", "m.py:4", "m.py:5", "m.py:6"]
    atomic = "def g(p, fig):\n    with atomic_path(p) as tmp:\n        fig.savefig(tmp)\n    open(p)\n    open(p, 'r')\n"
    assert _non_atomic_writes(atomic, "m.py") == []


def test_writes_in_src_go_through_io_utils():
    findings = [f for f in _all_non_atomic_writes() if not any(f.startswith(k) and f"({fn})" in f for k, fn in KNOWN_NON_ATOMIC.items())]
    assert not findings, "files written without hf_genrec.io_utils (a crash leaves them half written):\n" + "\n".join(findings)


def test_loss_curve_export_is_atomic():
    assert not [f for f in _all_non_atomic_writes() if "plot_loss_curves" in f]


# ---------------------------------------------------------------------------------------------------
# Training: kill the process, resume, compare with an uninterrupted run
# ---------------------------------------------------------------------------------------------------
MAX_STEPS, SAVE_STEPS = 24, 8
# Until train_from_recipe seeds the model's initialisation (see test_determinism), every run here
# seeds torch's global generator first, so both runs start from the same initial weights.
CLI = "import sys, torch; torch.manual_seed(0); from hf_genrec.cli.main import main; sys.exit(main(sys.argv[1:]))"


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def _recipe(root: Path, name: str) -> Path:
    """The shipped CPU recipe's training features (group_by_length, eval + best model, checkpoint rotation), tiny."""
    values = {
        **TINY_TIGER,
        "dataset": "beauty-slice",
        "data_dir": str(root / "data"),
        "semantic_ids": str(root / "ids"),
        "output_dir": str(root / name),
        "seed": 7,
        "dropout_rate": 0.1,
        "per_device_train_batch_size": 64,  # 17 steps an epoch: the run crosses an epoch boundary
        "train_sampling_strategy": "group_by_length",
        "max_steps": MAX_STEPS,
        "save_steps": SAVE_STEPS,
        "eval_strategy": "steps",
        "eval_steps": SAVE_STEPS,
        "load_best_model_at_end": True,
        "metric_for_best_model": "ndcg@10",
        "save_total_limit": 2,
        "logging_steps": 4,
        "test_at_end": False,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.allclose(wa[key], wb[key], rtol=0, atol=1e-6), f"{key} differs: {a} vs {b}"


def _validation(result: dict) -> dict:
    return {k: v for k, v in result.items() if k.startswith("validation_") and k != "validation_runtime"}


def _complete(trainer_state: Path) -> bool:
    """The checkpoint's last file exists and is whole (it could be caught half written)."""
    try:
        return json.loads(trainer_state.read_text())["global_step"] == SAVE_STEPS
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """An uninterrupted run (in-process) and a CLI run SIGKILLed after its first checkpoint, then resumed by the CLI."""
    from hf_genrec.data import load_rec_dataset
    from hf_genrec.training.pipeline import train_from_recipe
    from hf_genrec.training.recipe_loading import parse_recipe

    root = tmp_path_factory.mktemp("resume")
    write_beauty_slice(data_dir, root / "data", users=100)
    random_table(load_rec_dataset("beauty-slice", root / "data").catalogue.item_ids).save(root / "ids")
    crash_dir = root / "crash"
    first_checkpoint = crash_dir / f"checkpoint-{SAVE_STEPS}" / "trainer_state.json"  # the last file a checkpoint gets

    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "train", "--config", str(_recipe(root, "crash"))],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    killed_at: list[float] = []

    def kill_after_first_checkpoint() -> None:
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline:
            if _complete(first_checkpoint):
                proc.send_signal(signal.SIGKILL)
                killed_at.append(time.time())
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    watcher.start()
    torch.manual_seed(0)  # same initial weights as the CLI runs (see CLI above)
    full = train_from_recipe(parse_recipe(_recipe(root, "full")))
    watcher.join(timeout=300)
    _, stderr = proc.communicate(timeout=300)
    assert killed_at and proc.returncode == -signal.SIGKILL, f"the run was not killed (rc {proc.returncode}):\n{stderr[-2000:]}"
    assert not (crash_dir / "model.safetensors").exists(), "the run finished before it was killed"
    shutil.copytree(crash_dir, root / "killed")  # as the crash left it, for the in-process resume tests

    resumed = subprocess.run(
        [sys.executable, "-c", CLI, "train", "--config", str(_recipe(root, "crash")), "--resume-from-checkpoint"],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return root, full, json.loads(resumed.stdout.strip().splitlines()[-1])


def test_killed_run_resumes_to_the_uninterrupted_result(runs):
    root, full, resumed = runs
    killed = sorted(p.name for p in (root / "killed").iterdir() if p.name.startswith("checkpoint-"))
    assert killed and killed[0] == f"checkpoint-{SAVE_STEPS}"
    # the last checkpoint and the selected (best) model are the same tensors, dropout and data order included
    _assert_same_weights(root / "full" / f"checkpoint-{MAX_STEPS}" / "model.safetensors", root / "crash" / f"checkpoint-{MAX_STEPS}" / "model.safetensors")
    _assert_same_weights(root / "full" / "model.safetensors", root / "crash" / "model.safetensors")
    assert _validation(resumed) == pytest.approx(_validation(full), abs=1e-9)
    state = json.loads((root / "crash" / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS and state["best_model_checkpoint"].endswith(
        json.loads((root / "full" / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())["best_model_checkpoint"].rsplit("/", 1)[-1]
    )


def _resume_in_process(root: Path, folder: Path) -> dict:
    from hf_genrec.training.pipeline import train_from_recipe
    from hf_genrec.training.recipe_loading import parse_recipe

    torch.manual_seed(123)  # the initial weights must not matter: they come from the checkpoint
    return train_from_recipe(parse_recipe(_recipe(root, "crash"), [f"output_dir={folder}"]), resume_from_checkpoint=True)


def test_resume_with_the_python_api(runs, tmp_path):
    root, full, _ = runs
    folder = tmp_path / "again"
    shutil.copytree(root / "killed", folder)
    result = _resume_in_process(root, folder)
    _assert_same_weights(root / "full" / "model.safetensors", folder / "model.safetensors")
    assert _validation(result) == pytest.approx(_validation(full), abs=1e-9)


def test_resume_skips_a_checkpoint_the_crash_left_half_written(runs, tmp_path):
    root, full, _ = runs
    folder = tmp_path / "partial"
    shutil.copytree(root / "killed", folder)
    half = folder / f"checkpoint-{2 * SAVE_STEPS}"
    half.mkdir()
    # a checkpoint gets the run marker first, then its files: this one died after its weights
    shutil.copy(folder / f"checkpoint-{SAVE_STEPS}" / RUN_MARKER_FILE, half / RUN_MARKER_FILE)
    shutil.copy(folder / f"checkpoint-{SAVE_STEPS}" / "model.safetensors", half / "model.safetensors")
    _resume_in_process(root, folder)
    _assert_same_weights(root / "full" / "model.safetensors", folder / "model.safetensors")


def test_resume_without_any_checkpoint_names_the_folder(runs, tmp_path):
    from hf_genrec.errors import HfGenRecError

    root, _, _ = runs
    with pytest.raises(HfGenRecError, match=str(tmp_path / "empty")):
        _resume_in_process(root, tmp_path / "empty")
