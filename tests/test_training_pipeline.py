"""End to end on a real slice: recipe -> train -> select on validation -> test once -> reload -> recommend."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

import hf_genrec
from genrec_fixtures import TINY_TIGER, random_table, write_beauty_slice
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import ConfigError
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("pipeline")
    write_beauty_slice(data_dir, root / "data", users=150)
    dataset = load_rec_dataset("beauty-slice", root / "data")
    random_table(dataset.catalogue.item_ids).save(root / "ids")
    recipe = {
        **TINY_TIGER,
        "dataset": "beauty-slice",
        "data_dir": str(root / "data"),
        "semantic_ids": str(root / "ids"),
        "output_dir": str(root / "out"),
        "max_steps": 24,
        "eval_strategy": "steps",
        "eval_steps": 12,
        "save_steps": 12,
        "load_best_model_at_end": True,
        "metric_for_best_model": "ndcg@10",
        "plot_loss_curves": True,
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = train_from_recipe(parse_recipe(root / "recipe.yaml"))
    return root, result, dataset


def test_training_selects_on_validation_and_tests_once(trained):
    root, result, _ = trained
    out = root / "out"
    assert result["train_loss"] > 0
    for split in ("validation", "test"):
        assert 0 <= result[f"{split}_ndcg@10"] <= result[f"{split}_recall@10"] <= 1
        assert result[f"{split}_invalid_rate"] == 0.0
        assert result[f"{split}_users"] == 150
    record = json.loads((out / "eval_results.json").read_text())
    assert record["split"] == "test" and record["ndcg@10"] == result["test_ndcg@10"]
    assert "leave-one-out" in record["protocol"]
    assert (out / "loss_curves.png").stat().st_size > 1000
    assert yaml.safe_load((out / "recipe.yaml").read_text())["max_steps"] == 24
    # the checkpoint carries its ID table and no pickles besides Trainer state
    assert (out / "semantic_ids.json").exists() and (out / "model.safetensors").exists()


def test_reload_with_auto_classes_recommends_the_same(trained):
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor, AutoTokenizer

    root, _, dataset = trained
    model = AutoModelForSeq2SeqLM.from_pretrained(root / "out")
    processor = AutoProcessor.from_pretrained(root / "out")
    assert type(model).__name__ == "TigerForGenerativeRecommendation"
    assert type(processor).__name__ == "TigerProcessor" and processor.max_history == 20
    assert type(AutoTokenizer.from_pretrained(root / "out")).__name__ == "GenRecTokenizer"
    histories = [row["history"] for row in dataset.splits()["test"].select(range(8))]
    first = hf_genrec.recommend(model, processor, histories, k=5, num_beams=10)
    again = hf_genrec.recommend(
        AutoModelForSeq2SeqLM.from_pretrained(root / "out"), AutoProcessor.from_pretrained(root / "out"),
        histories, k=5, num_beams=10,
    )
    assert [[i for i, _ in r] for r in first] == [[i for i, _ in r] for r in again]
    assert all(len(r) == 5 and all(i in dataset.catalogue for i, _ in r) for r in first)
    scores = torch.tensor([[s for _, s in r] for r in first])
    assert torch.all(scores[:, :-1] >= scores[:, 1:])  # best first


def test_cli_evaluate_and_recommend(trained):
    root, result, _ = trained
    run = lambda *a: subprocess.run([sys.executable, "-m", "hf_genrec.cli.main", *a], capture_output=True, text=True, timeout=300)
    proc = run("evaluate", "--model", str(root / "out"), "--split", "test")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["ndcg@10"] == pytest.approx(result["test_ndcg@10"])
    assert metrics["users"] == 150 and metrics["invalid_rate"] == 0 and "protocol" in metrics
    proc = run("recommend", "--model", str(root / "out"), "--history", "1", "2", "3", "--top-k", "3", "--num-beams", "10")
    assert proc.returncode == 0, proc.stderr
    recs = json.loads(proc.stdout.strip().splitlines()[-1])["recommendations"]
    assert len(recs) == 3 and all("title" in r for r in recs)


def test_recipe_errors(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("output_dir: x\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"r.yaml: unknown recipe keys \['learning_rat'\]"):
        parse_recipe(path)
    path.write_text("output_dir: x\nd_model: big\n")
    with pytest.raises(ConfigError, match="key 'd_model' expects int, got 'big'"):
        parse_recipe(path)
    path.write_text("output_dir: x\nmodel_family: gpt\n")
    with pytest.raises(ConfigError, match="unknown model family 'gpt'"):
        parse_recipe(path)


def test_recipe_yaml_reads_strategies_and_exponents_as_transformers_expects(tmp_path):
    """``eval_strategy: no`` is the string "no" and ``1e-3`` a float (PyYAML's YAML 1.1 reads False and "1e-3")."""
    path = tmp_path / "r.yaml"
    path.write_text("output_dir: x\neval_strategy: no\nsave_strategy: no\nlearning_rate: 1e-3\n")
    parsed = parse_recipe(path, ["logging_strategy=no", "weight_decay=5E-2", "load_best_model_at_end=false"])
    args = parsed.training_args
    assert (args.eval_strategy, args.save_strategy, args.logging_strategy) == ("no", "no", "no")
    assert args.learning_rate == pytest.approx(1e-3) and args.weight_decay == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="could not determine a constructor|invalid YAML"):
        path.write_text("output_dir: !!python/object/apply:os.system ['true']\n")
        parse_recipe(path)


def test_bf16_recipe_trains_after_an_fp32_trainer_in_the_same_process(tmp_path, data_dir):
    """train_from_recipe builds RQ-VAE IDs with a Trainer of its own (fp32) before the recommender's
    Trainer; accelerate's process-wide state must not pin the second one to the first's precision."""
    from accelerate.state import AcceleratorState
    from safetensors.torch import load_file

    from hf_genrec.item_tokenizers.rqvae_training import train_rqvae_tokenizer
    from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

    write_beauty_slice(data_dir, tmp_path / "data", users=60)
    dataset = load_rec_dataset("beauty-slice", tmp_path / "data")
    item_ids = list(dataset.catalogue.item_ids)
    rq_recipe, rq_args = load_item_tokenizer_recipe(
        None, num_levels=2, codebook_size=8, hidden_dims=[16], latent_dim=4, kmeans_iters=3, num_train_epochs=1,
        per_device_train_batch_size=64, logging_steps=1000, output_dir=str(tmp_path / "rq"), use_cpu=True,
    )
    _, table, _ = train_rqvae_tokenizer(torch.randn(len(item_ids), 12), item_ids, rq_recipe, rq_args)
    assert AcceleratorState().mixed_precision == "no"
    table.save(tmp_path / "ids")
    recipe = {
        **TINY_TIGER, "dataset": "beauty-slice", "data_dir": str(tmp_path / "data"), "semantic_ids": str(tmp_path / "ids"),
        "output_dir": str(tmp_path / "out"), "max_steps": 4, "bf16": True, "attn_implementation": "eager",
        "dropout_rate": 0.0, "test_at_end": False,
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = train_from_recipe(parse_recipe(tmp_path / "recipe.yaml"))
    assert AcceleratorState().mixed_precision == "bf16"
    assert torch.isfinite(torch.tensor(result["train_loss"]))
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}, "autocast computes in bf16; the weights stay float32"


def test_shipped_recipes_parse():
    for name, overrides in (("tiger-beauty-cpu.yaml", []), ("tiger-beauty.yaml", ["bf16=false"])):  # no bf16 on CPU
        parsed = parse_recipe(f"training_args/{name}", overrides)
        assert parsed.recipe.dataset == "amazon-beauty" and parsed.recipe.model_family == "tiger"


def test_trainer_ranks_rows_in_dataset_order(trained):
    """Evaluation decodes users sorted by history length; rank() must answer row i with row i's items."""
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor

    from hf_genrec.recipes.training_arguments import GenRecTrainingArguments
    from hf_genrec.training.trainer import GenRecTrainer

    root, _, dataset = trained
    out = root / "out"
    model, processor = AutoModelForSeq2SeqLM.from_pretrained(out), AutoProcessor.from_pretrained(out)
    trainer = GenRecTrainer(
        model=model,
        args=GenRecTrainingArguments(output_dir=str(root / "rank"), report_to="none", use_cpu=True, per_device_eval_batch_size=8),
        processor=processor,
    )
    rows = dataset.splits(20)["validation"].select(range(40))
    histories, users = list(rows["history"]), list(rows["user_id"])
    lengths = [len(h) for h in histories]
    assert lengths != sorted(lengths), "the rows must not already be in length order"
    rankings = trainer.rank(rows, top_k=5, num_beams=10)
    expected = hf_genrec.recommend(model, processor, histories, k=5, num_beams=10, user_ids=users, batch_size=1)
    assert rankings.items.tolist() == [[item for item, _ in rec] for rec in expected]
    assert rankings.targets[:, 0].tolist() == [t[0] for t in rows["targets"]]


def test_trainer_model_card_is_hf_genrec_card(trained):
    """`Trainer.push_to_hub` writes its card with create_model_card: ours carries the model-index."""
    from huggingface_hub import ModelCard
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor

    from hf_genrec.recipes.training_arguments import GenRecTrainingArguments
    from hf_genrec.training.trainer import GenRecTrainer

    root, result, _ = trained
    out = root / "out"
    trainer = GenRecTrainer(
        model=AutoModelForSeq2SeqLM.from_pretrained(out),
        args=GenRecTrainingArguments(output_dir=str(out), report_to="none", use_cpu=True),
        processor=AutoProcessor.from_pretrained(out),
    )
    trainer.create_model_card(model_name="tiger-test")
    card = ModelCard.load(out / "README.md").data.to_dict()
    assert card["library_name"] == "hf_genrec"
    metrics = {m["name"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert metrics["NDCG@10"] == pytest.approx(result["test_ndcg@10"])
