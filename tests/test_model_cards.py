"""Model cards: Hub metadata (library, tags, model-index from eval_results.json), recipe and usage sections."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard

from hf_genrec.errors import ConfigError, DataFormatError, InvalidInputError
from hf_genrec.hub import card_kinds, find_template, infer_family, parse_eval_results, render_model_card, save_model_card
from hub_fixtures import EVAL_RESULTS, RECIPE_YAML, build_table


@pytest.fixture
def saved_dir(tmp_path) -> Path:
    """A saved-model directory without torch: config, safetensors weights (17 parameters), ID table, eval, recipe."""
    from safetensors.numpy import save_file

    directory = tmp_path / "tiger-beauty"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "tiger", "architectures": ["TigerForConditionalGeneration"], "d_model": 128}))
    save_file({"a.weight": np.zeros((4, 3), np.float32), "b.bias": np.zeros(5, np.float32)}, str(directory / "model.safetensors"))
    build_table().save(directory)
    (directory / "eval_results.json").write_text(json.dumps(EVAL_RESULTS))
    (directory / "recipe.yaml").write_text(RECIPE_YAML)
    return directory


def _yaml_blocks(text: str) -> list:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]


@pytest.mark.parametrize("family", card_kinds())
def test_card_metadata_model_index_recipe_and_usage(saved_dir, family):
    path = save_model_card(saved_dir, family, repo_id="org/tiger-beauty", base_model="sentence-transformers/all-MiniLM-L6-v2")
    assert path == saved_dir / "README.md"
    card = ModelCard.load(path)  # parses the YAML front matter, model-index included
    data = card.data.to_dict()
    assert data["library_name"] == "hf_genrec"
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["amazon-beauty"]
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert {"hf_genrec", "recommendation", "semantic-ids"} <= set(data["tags"])
    assert card.data.model_name == "tiger-beauty"

    results = card.data.eval_results
    expected = {k: v for k, v in EVAL_RESULTS.items() if "@" in k}
    assert len(results) == len(expected)
    for result in results:
        metric, k = result.metric_name.lower().split("@")
        assert result.metric_value == expected[f"{metric}@{k}"]
        assert result.metric_type == metric and result.metric_args == {"k": int(k)}
        assert (result.task_type, result.dataset_type, result.dataset_split) == ("recommendation", "amazon-beauty", "test")
        assert result.dataset_config == "leave-one-out"
        assert result.dataset_args == {"protocol": EVAL_RESULTS["protocol"]}

    text = card.text
    assert yaml.safe_load(RECIPE_YAML) in _yaml_blocks(text), "the recipe is embedded verbatim in a yaml block"
    assert "import hf_genrec" in text and 'from_pretrained("org/tiger-beauty")' in text
    assert "17" in text, "parameter count read from the safetensors header"
    if family != "sasrec":  # item scorers have no semantic IDs to describe
        assert "12 items" in text and "[4, 4, 2]" in text  # from semantic_ids.json
    assert "| amazon-beauty | test | leave-one-out | NDCG@10 | 0.0189 |" in text


def test_several_eval_records_and_family_inference(saved_dir):
    records = [dict(EVAL_RESULTS, split="validation", **{"ndcg@10": 0.5}), EVAL_RESULTS]
    (saved_dir / "eval_results.json").write_text(json.dumps(records))
    assert infer_family(saved_dir) == "tiger"
    card = ModelCard.load(save_model_card(saved_dir))  # family from config.json
    model_index = card.data.to_dict()["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in model_index] == ["validation", "test"]
    assert {m["name"]: m["value"] for m in model_index[0]["metrics"]}["NDCG@10"] == 0.5

    (saved_dir / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ConfigError, match="family"):
        save_model_card(saved_dir)


def test_card_without_eval_results_or_recipe(saved_dir):
    (saved_dir / "eval_results.json").unlink()
    (saved_dir / "recipe.yaml").unlink()
    card = render_model_card(saved_dir, "colarec")
    assert "model-index" not in card.data.to_dict()
    assert "No evaluation results" in card.text and "recipe was not saved" in card.text
    # an explicit recipe path and explicit results win over the directory's files
    recipe = saved_dir.parent / "other.yaml"
    recipe.write_text("dataset: amazon-phones\nmax_steps: 5\n")
    card = render_model_card(saved_dir, "colarec", eval_results={"dataset": "amazon-phones", "recall@20": 0.25}, recipe_path=recipe)
    assert card.data.to_dict()["datasets"] == ["amazon-phones"]
    assert card.data.eval_results[0].dataset_split == "test" and card.data.eval_results[0].metric_value == 0.25
    assert {"dataset": "amazon-phones", "max_steps": 5} in _yaml_blocks(card.text)


def test_missing_template_and_template_dir_override(saved_dir, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"tiger\.md not found.*HF_GENREC_HUB_CARDS"):
        render_model_card(saved_dir, "tiger", template_dir=tmp_path / "nowhere")
    monkeypatch.setenv("HF_GENREC_HUB_CARDS", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"\$HF_GENREC_HUB_CARDS"):
        find_template("tiger")
    custom = tmp_path / "cards"
    custom.mkdir()
    (custom / "tiger.md").write_text("---\n{{ card_data }}\n---\n\nCustom card for {{ repo_id }}.\n")
    monkeypatch.setenv("HF_GENREC_HUB_CARDS", str(custom))
    card = render_model_card(saved_dir, "tiger", repo_id="org/x")
    assert card.text.strip() == "Custom card for org/x." and card.data.library_name == "hf_genrec"
    with pytest.raises(InvalidInputError, match="unknown model-card family"):
        find_template("nosuchfamily")


def test_bad_evaluation_json_is_reported_with_its_source(saved_dir):
    with pytest.raises(DataFormatError, match="'dataset'"):
        parse_eval_results({"split": "test", "ndcg@10": 0.1})
    with pytest.raises(DataFormatError, match="'ndcg@10'.*finite"):
        parse_eval_results({"dataset": "amazon-beauty", "ndcg@10": "high"})
    with pytest.raises(DataFormatError, match="no 'metric@k'"):
        parse_eval_results({"dataset": "amazon-beauty", "users": 3})
    (saved_dir / "eval_results.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="eval_results.json"):
        render_model_card(saved_dir, "tiger")
    (saved_dir / "eval_results.json").write_text(json.dumps({"ndcg@10": float("nan"), "dataset": "d"}))
    with pytest.raises(DataFormatError, match=r"eval_results\.json.*finite"):
        render_model_card(saved_dir, "tiger")
