"""Honest cards: trained checkpoints pushed to the loopback Hub by every route carry the same hf_genrec card
(model-index), no absolute path of the training machine and no pickle; the card's Python snippets run as
written against the pushed repo and recommend the checkpoint's own items."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import hf_genrec
from hf_genrec.inference.saved_models import load_saved_model
from hub_fixtures import client_environ
from hub_server import LoopbackHubServer

TESTS_DIR = Path(__file__).resolve().parent

# Runs against the loopback Hub: pushes by the three routes, downloads every file of every repo, and
# executes the Python blocks of two pushed cards.  Prints one JSON object.
CLIENT = textwrap.dedent(
    """
    import contextlib, io, json, re, sys
    from pathlib import Path
    from huggingface_hub import HfApi, hf_hub_download
    import hf_genrec
    from hf_genrec.cli.main import main as cli
    from hf_genrec.inference.saved_models import load_saved_model
    from hf_genrec.recipes.training_arguments import GenRecTrainingArguments
    from hf_genrec.training.trainer import GenRecTrainer
    from transformers import AutoModelForSeq2SeqLM

    tiger, colarec, trainer_dir = sys.argv[1:4]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["push", "--model", tiger, "--repo-id", "org/tiger-cli"]) == 0
        assert cli(["push", "--model", colarec, "--repo-id", "org/colarec-cli"]) == 0
    AutoModelForSeq2SeqLM.from_pretrained(tiger).push_to_hub("org/tiger-model")
    saved = load_saved_model(trainer_dir)
    args = GenRecTrainingArguments(output_dir=trainer_dir, hub_model_id="org/tiger-trainer", report_to="none", use_cpu=True)
    GenRecTrainer(model=saved.model, args=args, processor=saved.processor).push_to_hub()
    from hf_genrec.training.pipeline import train_from_recipe
    from hf_genrec.training.recipe_loading import parse_recipe

    with contextlib.redirect_stdout(io.StringIO()):  # a recipe with push_to_hub: every save, then the end
        trained = train_from_recipe(parse_recipe(sys.argv[4]))

    api, out = HfApi(), {"files": {}, "cards": {}, "snippets": {}}
    out["hub_url"] = trained["hub_url"]
    for repo in ("org/tiger-cli", "org/tiger-model", "org/tiger-trainer", "org/colarec-cli", "org/tiger-recipe"):
        names = api.list_repo_files(repo)
        out["files"][repo] = {name: Path(hf_hub_download(repo, name)).read_bytes().hex() for name in names}
        out["cards"][repo] = Path(hf_hub_download(repo, "README.md")).read_text()
    for repo in ("org/tiger-cli", "org/colarec-cli"):
        printed = []
        for block in re.findall(r"```python\\n(.*?)```", out["cards"][repo], re.DOTALL):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(block, f"{repo}/README.md", "exec"), {"__name__": "__card__"})
            printed.append(buffer.getvalue())
        out["snippets"][repo] = printed
    print(json.dumps(out))
    """
)


def run_client(server: LoopbackHubServer, home: Path, *args: str) -> dict:
    env = client_environ(server, home, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", CLIENT, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def normalised(card: str, repo_id: str) -> str:
    return card.replace(repo_id, "REPO").replace(repo_id.split("/")[1], "NAME")


@pytest.fixture(scope="module")
def pushed(trained_checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    trainer_dir = root / "trainer-out"  # Trainer.push_to_hub saves into its output_dir: a copy
    shutil.copytree(trained_checkpoints["tiger"], trainer_dir)
    local_before = {f: (trained_checkpoints[f] / "recipe.yaml").read_text() for f in ("tiger", "colarec")}
    recipe = {**trained_checkpoints["recipes"]["tiger"], "output_dir": str(root / "recipe-out"), "max_steps": 2,
              "save_strategy": "steps", "save_steps": 2, "push_to_hub": True, "hub_model_id": "org/tiger-recipe"}
    (root / "push.yaml").write_text(yaml.safe_dump(recipe))
    with LoopbackHubServer() as server:
        result = run_client(server, root / "hf_home", str(trained_checkpoints["tiger"]), str(trained_checkpoints["colarec"]),
                            str(trainer_dir), str(root / "push.yaml"))
        result["commits"] = sorted(c.title for c in server.store.repos[("model", "org/tiger-recipe")].commits.values())
    assert not server.errors
    return result, root, local_before


def test_no_pushed_file_holds_a_local_path_or_a_pickle(pushed, trained_checkpoints):
    result, root, local_before = pushed
    markers = {str(trained_checkpoints["data"].parent), str(root), os.getcwd(), str(Path.home())}
    for repo, files in result["files"].items():
        assert {"README.md", "processor_config.json", "semantic_ids.json", "model.safetensors", "recipe.yaml"} <= set(files), repo
        for name, hexdata in files.items():
            data = bytes.fromhex(hexdata)
            assert not re.search(r"\.(bin|pt|pth|pkl|pickle|ckpt)$", name), f"{repo}/{name}: a pickle file"
            if not name.endswith(".safetensors"):
                assert not (data[:1] == b"\x80" and data[1:2] in b"\x02\x03\x04\x05"), f"{repo}/{name}: pickled data"
                assert not data.startswith(b"PK\x03\x04"), f"{repo}/{name}: a zip (torch.save) archive"
                text = data.decode("utf-8", errors="replace")
                leaked = [m for m in markers if m in text]
                assert not leaked, f"{repo}/{name} contains the local path(s) {leaked}"
        recipe = yaml.safe_load(bytes.fromhex(files["recipe.yaml"]).decode())
        assert not {"data_dir", "output_dir"} & set(recipe) and recipe["dataset"], repo
    # the user's own files are untouched
    for family, text in local_before.items():
        assert (trained_checkpoints[family] / "recipe.yaml").read_text() == text
        assert yaml.safe_load(text)["data_dir"] == str(trained_checkpoints["data"])


def test_every_route_publishes_the_same_card_with_model_index(pushed, trained_checkpoints):
    result, _, _ = pushed
    cards = result["cards"]
    expected = json.loads((trained_checkpoints["tiger"] / "eval_results.json").read_text())
    reference = normalised(cards["org/tiger-cli"], "org/tiger-cli")
    for repo in ("org/tiger-cli", "org/tiger-model", "org/tiger-trainer", "org/tiger-recipe"):
        card = cards[repo]
        if repo != "org/tiger-recipe":  # another training run: other figures, same card otherwise
            assert normalised(card, repo) == reference, repo
        meta = yaml.safe_load(card.split("---")[1])
        assert meta["library_name"] == "hf_genrec"
        metrics = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
        assert set(metrics) == {"Recall@5", "NDCG@5", "Recall@10", "NDCG@10"}
        if repo != "org/tiger-recipe":
            assert metrics["NDCG@10"] == pytest.approx(expected["ndcg@10"])
    # push_to_hub in a recipe: each save (hub_strategy every_save), then the finished folder with its results
    assert result["commits"] == ["End of training", "Training in progress, step 2", "initial commit"]
    assert result["hub_url"].endswith("/org/tiger-recipe")


@pytest.mark.parametrize("family", ["tiger", "colarec"])
def test_card_snippets_run_against_the_pushed_checkpoint(pushed, trained_checkpoints, family):
    result, _, _ = pushed
    repo = f"org/{family}-cli"
    saved = load_saved_model(trained_checkpoints[family])
    history = saved.processor.item_ids[:3]
    assert f"histories=[{json.dumps(history)}]" in result["cards"][repo], "the snippet uses the checkpoint's own items"
    k = 10 if family == "tiger" else 20
    package, remote, table = result["snippets"][repo]
    assert table == ""  # the ID-table snippet loads and prints nothing
    local = hf_genrec.recommend(saved.model, saved.processor, [history], k=k)
    from_card = eval(package.strip())  # printed [[(item_id, log_prob), ...]]
    assert [i for i, _ in from_card[0]] == [i for i, _ in local[0]]
    remote_items = [i for i, _ in eval(remote.strip())[0]]
    assert len(remote_items) == k and set(remote_items) <= set(saved.processor.item_ids)
    assert len(set(remote_items) & {i for i, _ in local[0]}) >= k - 2  # generate() ranks alike, ties aside
