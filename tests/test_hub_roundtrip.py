"""Push a saved model to a loopback Hub with the real huggingface_hub client, then load it back.

``huggingface_hub.constants`` reads ``HF_ENDPOINT`` / ``HF_HUB_OFFLINE`` / ``HF_HUB_DISABLE_XET`` at import
time, and this test process already runs with ``HF_HUB_OFFLINE=1`` (conftest), so every client runs in
a fresh subprocess whose environment points at the server (see ``LoopbackHubServer.client_env``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from hub_fixtures import EVAL_RESULTS, build_model_dir, build_table, client_environ, model_outputs
from hub_server import LoopbackHubServer

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def hub_server():
    with LoopbackHubServer() as server:
        yield server
    assert not server.errors, f"loopback hub internal errors: {server.errors}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("saved") / "tiny-tiger")


def run_client(server: LoopbackHubServer, hf_home: Path, args: list[str], **env) -> subprocess.CompletedProcess:
    environ = client_environ(server, hf_home, **env)
    result = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"client failed:\nSTDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-6000:]}"
    return result


def last_json(stdout: str):
    return json.loads(stdout.strip().splitlines()[-1])


PUSH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from hf_genrec.hub import push_model_dir
    url = push_model_dir(sys.argv[1], sys.argv[2], private=True, commit_message="first push", family="tiger")
    again = push_model_dir(sys.argv[1], sys.argv[2], private=True, family="tiger")  # unchanged directory: no new commit
    print(json.dumps({"url": url, "again": again}))
    """
)

PULL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from huggingface_hub import ModelCard, hf_hub_download
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from hf_genrec.semantic_ids import SemanticIdTable
    from hub_fixtures import model_outputs

    repo_id = sys.argv[1]
    model = AutoModelForSeq2SeqLM.from_pretrained(repo_id).eval()
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    table = SemanticIdTable.load(hf_hub_download(repo_id, "semantic_ids.json"))
    card = ModelCard.load(repo_id)
    print(json.dumps({
        "outputs": model_outputs(model, tokenizer),
        "table": table.to_dict(),
        "card": card.data.to_dict(),
    }))
    """
)


def test_push_then_load_from_fresh_cache(hub_server, model_dir, tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    repo_id = "org/tiny-tiger"
    before = sorted(p.name for p in model_dir.iterdir())
    pushed = last_json(run_client(hub_server, tmp_path / "push_home", [sys.executable, "-c", PUSH_SCRIPT, str(model_dir), repo_id]).stdout)
    assert pushed["url"] == pushed["again"] == f"{hub_server.url}/{repo_id}"
    commits = [p for m, p, status in hub_server.requests if m == "POST" and p == f"/api/models/{repo_id}/commit/main"]
    assert len(commits) == 1, "re-pushing an unchanged directory must not create a commit"
    assert sorted(p.name for p in model_dir.iterdir()) == before, "pushing leaves the user's folder as it was"

    # the weights went through the LFS batch + upload endpoints, not inline in the commit
    tree = json.loads(_get(hub_server, f"/api/models/{repo_id}/tree/main", token=True))
    by_path = {entry["path"]: entry for entry in tree}
    assert by_path["model.safetensors"]["lfs"]["size"] == (model_dir / "model.safetensors").stat().st_size
    assert "lfs" not in by_path["config.json"]
    assert any(m == "PUT" and p == f"/_lfs/{by_path['model.safetensors']['lfs']['oid']}" for m, p, _ in hub_server.requests)
    assert {"config.json", "model.safetensors", "tokenizer.json", "semantic_ids.json", "eval_results.json",
            "recipe.yaml", "README.md"} <= set(by_path)

    # the repo is private: anonymous requests see no repository
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(hub_server, f"/{repo_id}/resolve/main/config.json", token=False)
    assert info.value.code == 404 and info.value.headers["X-Error-Code"] == "RepoNotFound"

    pulled = last_json(run_client(hub_server, tmp_path / "pull_home", [sys.executable, "-c", PULL_SCRIPT, repo_id]).stdout)

    local_model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    local = model_outputs(local_model, AutoTokenizer.from_pretrained(model_dir))
    assert pulled["outputs"]["input_ids"] == local["input_ids"]
    torch.testing.assert_close(torch.tensor(pulled["outputs"]["logits"]), torch.tensor(local["logits"]), rtol=0, atol=1e-6)
    assert pulled["table"] == build_table().to_dict()
    card = pulled["card"]
    assert card["library_name"] == "hf_genrec"
    metrics = {m["name"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"Recall@5": EVAL_RESULTS["recall@5"], "Recall@10": EVAL_RESULTS["recall@10"],
                       "NDCG@5": EVAL_RESULTS["ndcg@5"], "NDCG@10": EVAL_RESULTS["ndcg@10"]}

    # transformers probed optional files and got a proper 404 (EntryNotFound + X-Repo-Commit), not an error
    misses = [p for m, p, status in hub_server.requests if status == 404 and f"/{repo_id}/resolve/" in p]
    assert misses, "expected transformers to probe for optional files"
    assert all(status in (200, 206, 404) for m, p, status in hub_server.requests if "/resolve/" in p)
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(hub_server, f"/{repo_id}/resolve/main/adapter_config.json", token=True)
    head = json.loads(_get(hub_server, f"/api/models/{repo_id}", token=True))["sha"]
    assert info.value.code == 404 and info.value.headers["X-Error-Code"] == "EntryNotFound"
    assert info.value.headers["X-Repo-Commit"] == head


def test_cli_push_prints_repo_and_files(hub_server, model_dir, tmp_path):
    exe = shutil.which("hf-genrec")
    command = [exe] if exe else [sys.executable, "-m", "hf_genrec.cli.main"]
    target = tmp_path / "model"
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("README.md"))
    (target / "README.md").write_text("---\nlibrary_name: transformers\n---\n# generic Trainer card\n")
    (target / "training_args.bin").write_bytes(b"\x80\x04pickle")  # a Trainer pickle must not be published
    (target / "checkpoint-10").mkdir()
    (target / "checkpoint-10" / "optimizer.pt").write_bytes(b"\x80\x04pickle")

    result = run_client(hub_server, tmp_path / "home", command + ["push", "--model", str(target), "--repo-id", "org/tiny-cli", "--family", "tiger"])
    out = last_json(result.stdout)
    assert out["repo_id"] == "org/tiny-cli"
    assert out["url"] == f"{hub_server.url}/org/tiny-cli"
    assert {"README.md", "config.json", "model.safetensors", "semantic_ids.json", "tokenizer.json"} <= set(out["files"])
    assert not any(f.startswith("checkpoint-") or f == "training_args.bin" for f in out["files"])
    info = json.loads(_get(hub_server, "/api/models/org/tiny-cli", token=False))  # public repo, card parsed
    assert info["cardData"]["library_name"] == "hf_genrec", "the Trainer's generic card is replaced by ours"
    assert "model-index" in info["cardData"]



def test_push_rejects_bad_input_before_any_request(tmp_path, model_dir):
    from hf_genrec.errors import CheckpointMismatchError, DataFormatError, InvalidInputError
    from hf_genrec.hub import push_model_dir

    unreachable = "http://127.0.0.1:9"  # nothing listens: any request would fail with a connection error
    with pytest.raises(DataFormatError, match="config.json"):
        push_model_dir(tmp_path, "org/x", endpoint=unreachable)
    with pytest.raises(InvalidInputError, match="repo id"):
        push_model_dir(model_dir, "not a repo id!", endpoint=unreachable)
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    table = json.loads((broken / "semantic_ids.json").read_text())
    table["codes"][1] = table["codes"][0]  # two items share an ID
    (broken / "semantic_ids.json").write_text(json.dumps(table))
    with pytest.raises(CheckpointMismatchError, match="semantic_ids.json"):
        push_model_dir(broken, "org/x", endpoint=unreachable)


def _get(server: LoopbackHubServer, path: str, token: bool) -> str:
    request = urllib.request.Request(server.url + path)
    if token:
        request.add_header("Authorization", f"Bearer {server.token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    with opener.open(request, timeout=10) as response:
        return response.read().decode()


TIGER_PULL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import hf_genrec
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor

    model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1])
    processor = AutoProcessor.from_pretrained(sys.argv[1])
    histories = json.loads(sys.argv[2])
    print(json.dumps({"class": type(model).__name__,
                      "recs": hf_genrec.recommend(model, processor, histories, k=5, num_beams=8)}))
    """
)


def test_real_tiger_checkpoint_round_trip_recommends_identical_items(hub_server, tmp_path):
    """A TIGER model + GenRecTokenizer pushed to the loopback Hub and pulled by repo id recommends the same."""
    import numpy as np
    import torch

    import hf_genrec
    from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
    from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation, TigerProcessor
    from hf_genrec.semantic_ids.id_table import SemanticIdTable

    items = list(range(1, 61))
    table = SemanticIdTable.from_content_codes(items, np.random.default_rng(1).integers(0, 6, (60, 2)), 6)
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=8)
    torch.manual_seed(0)
    model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(
        tokenizer, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1, num_decoder_layers=1)).eval()
    saved = tmp_path / "tiger"
    processor = TigerProcessor(tokenizer)
    model.save_pretrained(saved)
    processor.save_pretrained(saved)
    (saved / "eval_results.json").write_text(json.dumps(EVAL_RESULTS), encoding="utf-8")

    repo_id = "org/tiger-beauty"
    run_client(hub_server, tmp_path / "push_home", [sys.executable, "-m", "hf_genrec.cli.main", "push", "--model", str(saved), "--repo-id", repo_id])
    histories = [[1, 2, 3], [10, 20], [59]]
    pulled = last_json(run_client(hub_server, tmp_path / "pull_home", [sys.executable, "-c", TIGER_PULL_SCRIPT, repo_id, json.dumps(histories)]).stdout)
    local = hf_genrec.recommend(model, processor, histories, k=5, num_beams=8)
    assert pulled["class"] == "TigerForGenerativeRecommendation"
    assert [[item for item, _ in row] for row in pulled["recs"]] == [[item for item, _ in row] for row in local]
    np.testing.assert_allclose([[s for _, s in row] for row in pulled["recs"]], [[s for _, s in row] for row in local], atol=1e-5)


def test_push_refuses_a_file_naming_a_local_path(tmp_path, model_dir):
    from hf_genrec.errors import ConfigError
    from hf_genrec.hub import push_model_dir

    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    (target / "notes.txt").write_text(f"trained from {target.resolve()}/data\n")
    with pytest.raises(ConfigError, match=r"notes.txt contains the local path '.*': remove it before publishing"):
        push_model_dir(target, "org/x", endpoint="http://127.0.0.1:9", family="tiger")  # refused before any request
    (target / "notes.txt").unlink()
    (target / "recipe.yaml").write_text(f"dataset: amazon-beauty\ndata_dir: {tmp_path}/data\noutput_dir: {target}\n")
    from hf_genrec.hub.staging import publishable_recipe, stage_model_dir

    staged = stage_model_dir(target, tmp_path / "staged")
    assert (staged / "recipe.yaml").read_text() == publishable_recipe((target / "recipe.yaml").read_text())
    assert yaml.safe_load((staged / "recipe.yaml").read_text()) == {"dataset": "amazon-beauty"}
    assert str(tmp_path) in (target / "recipe.yaml").read_text()  # the user's own file keeps its paths
