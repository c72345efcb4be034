"""LoRA on TIGER: a peft-wrapped model ranks exactly as the merged one (recommend, evaluation, batch prediction),
and a recipe fine-tunes a trained checkpoint with LoRA, saving and publishing only the adapter."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import hf_genrec
from genrec_fixtures import TINY_TIGER
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import ConfigError
from hf_genrec.inference.batch_predictions import recommend_file
from hf_genrec.inference.saved_models import evaluate_saved_model, load_saved_model
from hf_genrec.recipes.training_arguments import GenRecTrainingArguments
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe
from hf_genrec.training.trainer import GenRecTrainer
from hub_fixtures import client_environ
from hub_server import LoopbackHubServer

TESTS_DIR = Path(__file__).resolve().parent


def items_of(ranked):
    return [[item for item, _ in row] for row in ranked]


@pytest.fixture(scope="module")
def lora_models(trained_checkpoints):
    """The trained TIGER, a LoRA-wrapped copy with random (non-zero) adapters, and that copy merged."""
    from peft import LoraConfig, get_peft_model

    saved = load_saved_model(trained_checkpoints["tiger"])
    torch.manual_seed(0)
    config = LoraConfig(task_type="SEQ_2_SEQ_LM", r=4, lora_alpha=8, target_modules=["q", "k", "v", "o", "wi", "wo", "lm_head"],
                        init_lora_weights=False)
    adapted = get_peft_model(copy.deepcopy(saved.model), config).eval()
    merged = copy.deepcopy(adapted).merge_and_unload().eval()
    rows = load_rec_dataset("beauty-slice", trained_checkpoints["data"]).splits(20)["test"].select(range(48))
    return saved, adapted, merged, rows


def test_peft_model_ranks_as_the_merged_model(lora_models, tmp_path, one_torch_thread):
    saved, adapted, merged, rows = lora_models
    kwargs = dict(k=10, num_beams=10, user_ids=rows["user_id"])
    with_adapter = hf_genrec.recommend(adapted, saved.processor, rows["history"], **kwargs)
    with_merged = hf_genrec.recommend(merged, saved.processor, rows["history"], **kwargs)
    base = hf_genrec.recommend(saved.model, saved.processor, rows["history"], **kwargs)
    assert items_of(with_adapter) == items_of(with_merged)
    torch.testing.assert_close(torch.tensor([[s for _, s in r] for r in with_adapter]),
                               torch.tensor([[s for _, s in r] for r in with_merged]), atol=1e-4, rtol=1e-4)
    assert items_of(with_adapter) != items_of(base), "the adapter changes the rankings"

    args = GenRecTrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=16, generation_num_beams=10,
                                   metric_ks=[5, 10], use_cpu=True, report_to="none", disable_tqdm=True)
    evaluations = []
    for model in (adapted, merged):
        trainer = GenRecTrainer(model=model, args=args, processor=saved.processor)
        metrics = trainer.evaluate(rows, metric_key_prefix="test")
        evaluations.append((trainer.last_rankings.items.tolist(), {k: metrics[k] for k in ("test_ndcg@10", "test_recall@10")}))
    assert evaluations[0] == evaluations[1]
    assert evaluations[0][0] == items_of(with_adapter)

    # batch prediction from a saved adapter folder (adapter weights + processor; the base is the trained folder)
    folder = tmp_path / "adapter"
    adapted.save_pretrained(folder)
    saved.processor.save_pretrained(folder)
    assert not (folder / "model.safetensors").exists() and (folder / "adapter_model.safetensors").exists()
    requests = tmp_path / "users.jsonl"
    requests.write_text("".join(json.dumps({"user_id": u, "history": h}) + "\n" for u, h in zip(rows["user_id"], rows["history"])))
    recommend_file(folder, requests, tmp_path / "out.jsonl", top_k=10, num_beams=10, show_progress=False)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["items"] for line in lines] == items_of(with_merged)


def write_new_interactions(source: Path, target: Path, item_ids: set[int], users: range) -> Path:
    """Later users of Beauty, their histories kept to the checkpoint's catalogue: new interactions, same items."""
    lines = (source / "amazon-beauty" / "sequences.txt").read_text().splitlines()
    kept = []
    for line in lines[users.start : users.stop]:
        user, *items = line.split()
        items = [i for i in items if int(i) in item_ids]
        if len(items) >= 3:
            kept.append(" ".join([user, *items]))
    folder = target / "beauty-new"
    folder.mkdir(parents=True)
    (folder / "sequences.txt").write_text("\n".join(kept) + "\n")
    with open(source / "amazon-beauty" / "items.jsonl") as src, open(folder / "items.jsonl", "w") as dst:
        dst.writelines(line for line in src if json.loads(line)["item_id"] in item_ids)
    return target


def test_lora_fine_tuning_recipe_saves_and_publishes_only_the_adapter(trained_checkpoints, data_dir, tmp_path, one_torch_thread):
    base_dir = trained_checkpoints["tiger"]
    base_weights = load_file(str(base_dir / "model.safetensors"))
    saved = load_saved_model(base_dir)
    write_new_interactions(data_dir, tmp_path / "data", set(saved.processor.item_ids), range(2000, 6000))
    recipe = {**TINY_TIGER, "dataset": "beauty-new", "data_dir": str(tmp_path / "data"), "output_dir": str(tmp_path / "lora"),
              "init_from_checkpoint": str(base_dir), "lora_r": 4, "max_steps": 6, "learning_rate": 0.02, "save_strategy": "no"}
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(recipe))
    result = train_from_recipe(parse_recipe(tmp_path / "lora.yaml"))
    out = tmp_path / "lora"
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all("lora_" in name for name in adapter)
    assert any(float(t.abs().sum()) > 0 for name, t in adapter.items() if "lora_B" in name), "the adapter trained"
    assert all(torch.equal(t, base_weights[n]) for n, t in load_file(str(base_dir / "model.safetensors")).items())
    again = evaluate_saved_model(out, split="test", scratch_dir=str(tmp_path))  # the folder loads base + adapter
    assert again["ndcg@10"] == pytest.approx(result["test_ndcg@10"])

    # publish: the base once, then the adapter alone, pointing at the base's Hub id; the card's snippet loads both
    with pytest.raises(ConfigError, match="the adapter's base model is '.*', not a Hub id; pass the Hub id"):
        from hf_genrec.hub import push_model_dir

        push_model_dir(out, "org/tiger-lora", endpoint="http://127.0.0.1:9")  # refused before any request
    client = textwrap.dedent(
        """
        import contextlib, io, json, re, sys
        from pathlib import Path
        from huggingface_hub import HfApi, hf_hub_download
        from hf_genrec.cli.main import main as cli
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(["push", "--model", sys.argv[1], "--repo-id", "org/tiger"]) == 0
            assert cli(["push", "--model", sys.argv[2], "--repo-id", "org/tiger-lora", "--base-model", "org/tiger"]) == 0
        card = Path(hf_hub_download("org/tiger-lora", "README.md")).read_text()
        block = re.findall(r"```python\\n(.*?)```", card, re.DOTALL)[0].replace("histories=[", "histories=[" + sys.argv[3] + ", ")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(block, {})
        config = json.loads(Path(hf_hub_download("org/tiger-lora", "adapter_config.json")).read_text())
        print(json.dumps({"files": HfApi().list_repo_files("org/tiger-lora"), "base": config["base_model_name_or_path"],
                          "recs": printed.getvalue()}))
        """
    )
    histories = [[int(i) for i in h] for h in load_rec_dataset("beauty-new", tmp_path / "data").splits(20)["test"]["history"][:4]]
    with LoopbackHubServer() as server:
        env = client_environ(server, tmp_path / "hf_home", OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", client, str(base_dir), str(out), ", ".join(map(str, histories))],
                              env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    pushed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"adapter_model.safetensors", "adapter_config.json", "processor_config.json", "README.md"} <= set(pushed["files"])
    assert "model.safetensors" not in pushed["files"] and "training_args.bin" not in pushed["files"]
    assert pushed["base"] == "org/tiger"
    lora = load_saved_model(out)
    card_histories = [*histories, lora.processor.item_ids[:3]]  # the card's own example history comes last
    local = hf_genrec.recommend(lora.model, lora.processor, card_histories, k=10)
    assert items_of(eval(pushed["recs"].strip())) == items_of(local)


def test_lora_recipe_fields_are_checked(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("output_dir: x\nlora_r: 8\n")
    with pytest.raises(ConfigError, match="lora_r needs init_from_checkpoint"):
        parse_recipe(path)
    path.write_text("output_dir: x\ninit_from_checkpoint: a\ninit_from_t5: t5-small\n")
    with pytest.raises(ConfigError, match="init_from_checkpoint and init_from_t5 exclude each other"):
        parse_recipe(path)
    with pytest.raises(ConfigError, match="not a saved TIGER folder"):
        from hf_genrec.models.tiger.family import TigerRecipe, checkpoint_to_fine_tune

        checkpoint_to_fine_tune(TigerRecipe(init_from_checkpoint=str(tmp_path)), None)


def test_fine_tuning_refuses_an_other_id_table(trained_checkpoints):
    from genrec_fixtures import random_table
    from hf_genrec.models.tiger.family import TigerRecipe, checkpoint_to_fine_tune

    saved = load_saved_model(trained_checkpoints["tiger"])
    other = random_table(saved.processor.item_ids, seed=7)
    with pytest.raises(ConfigError, match="the recipe's semantic_ids differ from the checkpoint's ID table"):
        checkpoint_to_fine_tune(TigerRecipe(init_from_checkpoint=str(trained_checkpoints["tiger"])), other)
