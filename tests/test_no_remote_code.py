"""No remote code, ever: a folder whose config names its own code (``auto_map``) plus a payload that
writes a marker file when imported, and ``y`` on stdin for transformers' "run the custom code?"
prompt.  Every command ends in a one-line error (or, for a family of the package, loads the
package's own classes) and the payload never runs.  A control proves the payload does run when a
loader lets transformers ask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genrec_fixtures import cli_in_process

PAYLOAD = """
import pathlib
pathlib.Path({marker!r}).write_text("the checkpoint's code ran")
from transformers import PretrainedConfig, PreTrainedModel
class EvilConfig(PretrainedConfig):
    model_type = "evilnet"
class EvilModel(PreTrainedModel):
    config_class = EvilConfig
class EvilModule(torch.nn.Module):
    pass
"""
AUTO_MAP = {"AutoConfig": "payload.EvilConfig", "AutoModel": "payload.EvilModel",
            "AutoModelForSeq2SeqLM": "payload.EvilModel", "AutoTokenizer": ["payload.EvilModel", None]}
ITEMS = [{"item_id": i, "title": f"item {i}"} for i in range(1, 9)]


def _payload(folder: Path, marker: Path) -> None:
    (folder / "payload.py").write_text("import torch\n" + PAYLOAD.format(marker=str(marker)))


@pytest.fixture
def evil(tmp_path):
    """An unknown model type that only its own code defines; a sentence-transformers folder naming a module of its own."""
    marker = tmp_path / "PAYLOAD_RAN"
    model = tmp_path / "evil"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "evilnet", "auto_map": AUTO_MAP, "architectures": ["EvilModel"]}))
    (model / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["payload.EvilModel", None]}}))
    _payload(model, marker)
    encoder = tmp_path / "evil-st"
    encoder.mkdir()
    (encoder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "payload.EvilModule"}]))
    _payload(encoder, marker)
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    (data / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    (data / "sequences.txt").write_text("1 1 2 3 4\n2 2 3 5 6 7\n3 8 1 2\n")
    return tmp_path, marker


@pytest.mark.parametrize("command", ["recommend", "evaluate", "build-semantic-ids", "build-semantic-ids-st"])
def test_no_command_runs_a_checkpoints_code(evil, command):
    root, marker = evil
    data = ["--dataset", "toy", "--data-dir", str(root / "data")]
    argv = {
        "recommend": ["recommend", "--model", str(root / "evil"), "--history", "1", "2"],
        "evaluate": ["evaluate", "--model", str(root / "evil"), *data],
        "build-semantic-ids": ["build-semantic-ids", "--encoder", str(root / "evil"), *data, "--output", str(root / "ids"),
                               "--method", "rqkmeans"],
        "build-semantic-ids-st": ["build-semantic-ids", "--encoder", str(root / "evil-st"), *data, "--output",
                                  str(root / "ids"), "--method", "rqkmeans"],
    }[command]
    before = sorted(p.name for p in (root / "evil").iterdir())
    run = cli_in_process(*argv, stdin="y\n" * 20)
    message = run.error_line()
    assert "[y/N]" not in run.err
    assert not marker.exists(), "the checkpoint's code ran"
    assert any(reason in message for reason in ("own code", "not a recommender family", "third-party code")), message
    assert sorted(p.name for p in (root / "evil").iterdir()) == before


def test_a_package_family_with_an_auto_map_loads_the_packages_classes(tmp_path):
    """``model_type: tiger`` with an ``auto_map`` pointing at a payload: the package's classes load it, the payload never runs."""
    import numpy as np

    from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
    from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation, TigerProcessor
    from hf_genrec.semantic_ids.id_table import SemanticIdTable

    codes = np.random.default_rng(0).integers(0, 8, (8, 2))
    tokenizer = GenRecTokenizer.from_semantic_id_table(SemanticIdTable.from_content_codes(list(range(1, 9)), codes, 8), num_user_buckets=0)
    torch.manual_seed(0)
    folder = tmp_path / "tiger"
    TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=1)).save_pretrained(folder)
    TigerProcessor(tokenizer).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = AUTO_MAP
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "PAYLOAD_RAN"
    _payload(folder, marker)
    run = cli_in_process("recommend", "--model", str(folder), "--history", "1", "2", "--top-k", "3", stdin="y\n" * 20)
    assert len(run.result["recommendations"]) == 3
    assert not marker.exists()


def test_control_the_payload_runs_where_a_loader_lets_transformers_ask(evil, tmp_path):
    """The harness is sound: ``AutoConfig.from_pretrained`` left to ask, with ``y`` on stdin, runs the payload.
    (A subprocess, with the Hub's module cache under tmp_path.)"""
    root, marker = evil
    script = "import sys; from transformers import AutoConfig; AutoConfig.from_pretrained(sys.argv[1])"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_MODULES_CACHE": str(tmp_path / "hf-modules"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", script, str(root / "evil")], input="y\n", capture_output=True, text=True, env=env, timeout=300)
    assert marker.exists(), "the control did not run the payload: the tests above prove nothing"
