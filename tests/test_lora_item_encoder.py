"""LoRA item encoders: MiniLM adapted on real Beauty next-item pairs, decoder-only (tiny Llama) encoders,
adapter save / reload / base resolution, embedding cache identity, semantic IDs built with an adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from genrec_fixtures import recipe_with
from hf_genrec.cli.main import main
from hf_genrec.errors import ConfigError, DataFormatError
from hf_genrec.item_encoders import (
    DEFAULT_BASE_MODEL_ID,
    encode_item_texts,
    encoder_fingerprint,
    load_adapted_encoder,
    load_llm_encoder,
    load_sentence_encoder,
    next_item_pairs,
    resolve_base_model,
    train_item_encoder_lora,
)
from hf_genrec.hub.item_encoder_push import push_item_encoder
from hf_genrec.item_encoders import lora_base_models, sentence_encoder
from hf_genrec.recipes.item_encoder_recipe import load_item_encoder_recipe
from hf_genrec.item_tokenizers.rqkmeans import RQKMeansTokenizer
from hf_genrec.item_tokenizers.build import build_semantic_ids
from hf_genrec.semantic_ids.id_table import SemanticIdTable

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training_args" / "item-encoder-lora-beauty.yaml"
RQ_RECIPE = ROOT / "training_args" / "rqvae-beauty.yaml"
N_ITEMS = 300
TINY_LLM_ID = "hf-genrec-tests/tiny-llama"
# a few optimiser steps on small batches of short texts: enough to move the adapter, fast on 2 cores
FAST = dict(per_device_train_batch_size=12, max_seq_length=32, eval_pairs=16, learning_rate=3e-3,
            warmup_steps=0, logging_steps=2, use_cpu=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mini_data(data_dir, tmp_path_factory) -> Path:
    """A dataset folder cut from Beauty: its first 300 items and the users' histories over them."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "beauty-mini"
    folder.mkdir()
    items = []
    with open(data_dir / "amazon-beauty" / "items.jsonl", encoding="utf-8") as handle:
        for line in handle:
            items.append(json.loads(line))
            if len(items) == N_ITEMS:
                break
    (folder / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    lines = []
    for line in (data_dir / "amazon-beauty" / "sequences.txt").read_text().splitlines():
        user, *sequence = line.split()
        kept = [i for i in sequence if int(i) <= N_ITEMS]
        if len(kept) >= 3:
            lines.append(" ".join([user, *kept]))
    (folder / "sequences.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def mini(mini_data):
    from hf_genrec.data import load_rec_dataset

    return load_rec_dataset("beauty-mini", data_dir=mini_data)


@pytest.fixture(scope="module")
def minilm_adapter(mini, tmp_path_factory):
    """MiniLM + LoRA trained 3 steps on the mini catalogue's next-item pairs: (model, summary, dir)."""
    out = tmp_path_factory.mktemp("minilm-lora") / "adapter"
    recipe, args = load_item_encoder_recipe(RECIPE, max_steps=3, output_dir=str(out), **FAST)
    model, summary = train_item_encoder_lora(recipe, args, out, dataset=mini)
    return model, summary, out


# ------------------------------------------------------------------------------------ recipe, pairs


def test_recipe_parses_and_rejects_bad_keys(tmp_path):
    recipe, args = load_item_encoder_recipe(RECIPE, output_dir=str(tmp_path))
    assert recipe.dataset == "amazon-beauty" and recipe.base_model is None and recipe.lora_r == 8
    assert args.batch_sampler == "no_duplicates" and args.save_strategy == "no"
    bad = tmp_path / "bad.yaml"
    bad.write_text("lora_r: 8\nlora_rank: 8\n")
    with pytest.raises(ConfigError, match="lora_rank"):
        load_item_encoder_recipe(bad)
    bad.write_text("pooling: cls\n")
    with pytest.raises(ConfigError, match="pooling"):
        load_item_encoder_recipe(bad)
    bad.write_text("lora_r: eight\n")
    with pytest.raises(ConfigError, match="lora_r"):
        load_item_encoder_recipe(bad)


def test_next_item_pairs_window_dedup_and_no_self_pairs():
    sequences = {2: [5, 6, 5, 7], 1: [1, 2, 3], 3: [6, 5, 9, 9]}
    assert next_item_pairs(sequences) == [(1, 2), (2, 3), (5, 6), (5, 7), (5, 9)]
    assert (6, 7) in next_item_pairs(sequences, window=2) and (9, 9) not in next_item_pairs(sequences, window=3)


def test_pairs_come_from_training_histories_only(mini):
    """A user's validation/test targets (the last two items) never form a pair unless they also
    follow each other inside some training history."""
    train = mini.train_sequences()
    allowed = {frozenset(p) for seq in train.values() for p in zip(seq, seq[1:]) if p[0] != p[1]}
    pairs = next_item_pairs(train)
    assert pairs and {frozenset(p) for p in pairs} == allowed
    held_out = {frozenset(seq[-2:]) for seq in mini.sequences.values()} - allowed
    assert held_out and not held_out & {frozenset(p) for p in pairs}


# ------------------------------------------------------------------------------------ MiniLM + LoRA


def test_lora_changes_embeddings_and_reloads_identically(minilm_adapter, mini, minilm_path):
    model, summary, out = minilm_adapter
    assert summary["steps"] == 3 and summary["train_pairs"] + summary["eval_pairs"] == summary["pairs"]
    assert summary["before"]["pairs"] == summary["after"]["pairs"] == 16
    assert 0 < summary["trainable_parameters"] < 200_000  # LoRA matrices only, not MiniLM's 22.7M
    texts = mini.catalogue.texts()[:24]
    base = load_sentence_encoder(minilm_path, device="cpu")
    base.max_seq_length = 32
    before = base.encode(texts, convert_to_tensor=True, show_progress_bar=False)
    adapted = model.encode(texts, convert_to_tensor=True, show_progress_bar=False)
    assert (adapted - before).abs().max() > 1e-3  # the adapter moved the embeddings
    reloaded = load_adapted_encoder(out, device="cpu")
    assert reloaded.max_seq_length == 32
    again = reloaded.encode(texts, convert_to_tensor=True, show_progress_bar=False)
    torch.testing.assert_close(again, adapted, atol=1e-5, rtol=1e-4)

    # published layout: adapter weights in safetensors, the base recorded as a Hub id, not a path
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    config_text = (out / "adapter_config.json").read_text()
    assert json.loads(config_text)["base_model_name_or_path"] == DEFAULT_BASE_MODEL_ID
    assert minilm_path not in config_text and str(out) not in config_text
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in (out / "README.md").read_text()


def test_base_resolution_rule(monkeypatch, tmp_path, minilm_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(lora_base_models, "_in_hf_cache", lambda hub_id: False)
    assert Path(resolve_base_model(DEFAULT_BASE_MODEL_ID)).resolve() == Path(minilm_path).resolve()
    assert resolve_base_model(DEFAULT_BASE_MODEL_ID, base_model=tmp_path) == str(tmp_path)  # explicit wins
    assert resolve_base_model(str(tmp_path)) == str(tmp_path)  # an existing local path as recorded
    with pytest.raises(ConfigError, match="someone/unknown-encoder"):
        resolve_base_model("someone/unknown-encoder")
    monkeypatch.setattr(lora_base_models, "_in_hf_cache", lambda hub_id: True)
    assert resolve_base_model("someone/unknown-encoder") == "someone/unknown-encoder"


def test_adapter_is_part_of_the_cache_identity(minilm_adapter, minilm_path, tmp_path):
    _, _, out = minilm_adapter
    fingerprint = encoder_fingerprint(out)
    assert fingerprint.startswith("adapter:") and fingerprint != encoder_fingerprint(minilm_path)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert encoder_fingerprint(copy) == fingerprint  # content, not location or mtimes
    from safetensors.torch import load_file, save_file

    weights = load_file(str(copy / "adapter_model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3  # "retrained" adapter, same size
    save_file(weights, str(copy / "adapter_model.safetensors"))
    assert encoder_fingerprint(copy) != fingerprint


def test_semantic_ids_built_with_the_adapter(minilm_adapter, mini, mini_data, tmp_path, monkeypatch, capsys):
    model, _, out = minilm_adapter
    item_ids, texts = mini.catalogue.item_ids, mini.catalogue.texts()
    cache = tmp_path / "cache"
    summary = build_semantic_ids(
        method="rqkmeans", recipe_path=RQ_RECIPE, output_dir=tmp_path / "ids", item_ids=item_ids, texts=texts,
        encoder=str(out), embedding_cache_dir=str(cache), show_progress_bar=False, codebook_size=16, kmeans_iters=5,
    ).summary
    assert summary["items"] == summary["unique_ids"] == N_ITEMS
    table = SemanticIdTable.load(tmp_path / "ids")
    assert table.num_items == N_ITEMS and RQKMeansTokenizer.from_pretrained(tmp_path / "ids").semantic_id_table == table
    # the cached embeddings are the adapted encoder's (base + adapter reloaded from the directory)
    monkeypatch.setattr(sentence_encoder, "load_sentence_encoder", lambda *a, **k: pytest.fail("cache missed"))
    cached = encode_item_texts(texts, str(out), cache_dir=cache, show_progress_bar=False)
    adapted = model.encode(texts[-24:], convert_to_tensor=True, show_progress_bar=False).cpu()
    torch.testing.assert_close(cached[-24:], adapted, atol=1e-5, rtol=1e-4)
    codes = RQKMeansTokenizer.from_pretrained(tmp_path / "ids").encode_codes(cached).numpy()
    assert (codes == table.codes[:, : codes.shape[1]]).all()

    # the CLI's --encoder takes the same directory (same texts: the embedding cache answers)
    recipe = tmp_path / "rq.yaml"
    recipe.write_text(recipe_with(RQ_RECIPE, codebook_size=16, kmeans_iters=5))
    capsys.readouterr()
    code = main([
        "build-semantic-ids", "--dataset", "beauty-mini", "--data-dir", str(mini_data), "--config", str(recipe),
        "--method", "rqkmeans", "--encoder", str(out), "--cache-dir", str(cache), "--output", str(tmp_path / "cli"),
    ])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["items"] == N_ITEMS and result["embedding_seconds"] < 5


def test_cli_finetune_prints_json_and_rejects_bad_input(mini_data, tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(recipe_with(RECIPE, per_device_train_batch_size=8, max_seq_length=24, warmup_steps=0, eval_batch_size=32))
    out = tmp_path / "adapter"
    capsys.readouterr()
    code = main([
        "finetune-item-encoder", "--dataset", "beauty-mini", "--data-dir", str(mini_data), "--config", str(recipe),
        "--output", str(out), "--max-steps", "1", "--eval-pairs", "8", "--device", "cpu",
    ])
    assert code == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert len(stdout) == 1  # training logs go to stderr
    result = json.loads(stdout[0])
    assert {"pairs", "steps", "seconds", "output", "before", "after"} <= set(result)
    assert result["steps"] == 1 and result["output"] == str(out) and "recall@10" in result["after"]
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == DEFAULT_BASE_MODEL_ID

    bad = tmp_path / "bad.yaml"
    bad.write_text("lora_rank: 4\n")
    assert main(["finetune-item-encoder", "--config", str(bad), "--output", str(tmp_path / "x")]) == 2
    # a local base without a Hub id to record: refused before any training
    assert main(["finetune-item-encoder", "--base-model", str(tmp_path), "--output", str(tmp_path / "y")]) == 2
    assert "base-model-id" in capsys.readouterr().err


def test_push_refuses_a_local_base_path(minilm_adapter, tmp_path):
    _, _, out = minilm_adapter
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/home/me/models/minilm"
    (copy / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(DataFormatError, match="local path"):
        push_item_encoder(copy, "me/beauty-encoder")
    with pytest.raises(DataFormatError, match="not a saved adapter"):
        push_item_encoder(tmp_path, "me/beauty-encoder")


# ------------------------------------------------------------------------------------ decoder-only LLM


@pytest.fixture(scope="module")
def tiny_llm(mini, tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama + a WordLevel tokenizer trained on the item texts (no pad
    token: the encoder must fall back to EOS)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-llama")
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(mini.catalogue.texts(), trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, intermediate_size=64,
        vocab_size=len(tokenizer), max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
    )
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("pooling", ["mean", "lasttoken"])
def test_llm_encoder_pooling_and_padding(tiny_llm, mini, pooling):
    from transformers import AutoModel, AutoTokenizer

    texts = mini.catalogue.texts()[:12]
    embeddings = encode_item_texts(texts, str(tiny_llm), pooling=pooling, use_cache=False, show_progress_bar=False)
    assert embeddings.shape == (12, 32) and torch.isfinite(embeddings).all()
    # padding never leaks into an item's embedding: alone or in a batch of longer texts, the same vector
    model = load_llm_encoder(tiny_llm, pooling=pooling, device="cpu")
    alone = model.encode(texts[3:4], convert_to_tensor=True, show_progress_bar=False)
    torch.testing.assert_close(alone[0], embeddings[3], atol=1e-5, rtol=1e-4)
    # and the pooling is what it says, against the raw transformers model on one unpadded text
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    raw = AutoModel.from_pretrained(tiny_llm).eval()
    with torch.no_grad():
        hidden = raw(**tokenizer(texts[3:4], return_tensors="pt")).last_hidden_state[0]
    expected = hidden.mean(dim=0) if pooling == "mean" else hidden[-1]
    torch.testing.assert_close(embeddings[3], expected, atol=1e-5, rtol=1e-4)


def test_llm_lora_train_save_reload(tiny_llm, mini, tmp_path, monkeypatch):
    out = tmp_path / "llm-adapter"
    recipe, args = load_item_encoder_recipe(
        RECIPE, base_model=str(tiny_llm), base_model_id=TINY_LLM_ID, pooling="lasttoken",
        max_steps=3, output_dir=str(out), **{**FAST, "learning_rate": 1e-2},
    )
    model, summary = train_item_encoder_lora(recipe, args, out, dataset=mini)
    assert summary["base_kind"] == "transformers" and summary["pooling"] == "lasttoken" and summary["steps"] == 3
    texts = mini.catalogue.texts()[:16]
    base = load_llm_encoder(tiny_llm, pooling="lasttoken", max_seq_length=32, device="cpu")
    before = base.encode(texts, convert_to_tensor=True, show_progress_bar=False)
    adapted = model.encode(texts, convert_to_tensor=True, show_progress_bar=False)
    assert adapted.shape == (16, 32) and (adapted - before).abs().max() > 1e-4
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == TINY_LLM_ID

    reloaded = load_adapted_encoder(out, base_model=tiny_llm, device="cpu")
    torch.testing.assert_close(reloaded.encode(texts, convert_to_tensor=True, show_progress_bar=False), adapted,
                               atol=1e-5, rtol=1e-4)
    # offline, the recorded Hub id resolves only through a registered local copy
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=TINY_LLM_ID):
        encode_item_texts(texts, str(out), use_cache=False, show_progress_bar=False)
    monkeypatch.setitem(lora_base_models._LOCAL_BASE_MODELS, TINY_LLM_ID, lambda: str(tiny_llm))
    via_cache_api = encode_item_texts(texts, str(out), use_cache=False, show_progress_bar=False)
    torch.testing.assert_close(via_cache_api, adapted.cpu(), atol=1e-5, rtol=1e-4)


PUSH_AND_LOAD = """
import json, sys, torch
from hf_genrec.hub.item_encoder_push import push_item_encoder
from hf_genrec.item_encoders import load_adapted_encoder
url = push_item_encoder(sys.argv[1], sys.argv[2], private=True)
torch.set_num_threads(1)
# a fresh HF_HOME, online: the adapter comes from the Hub; its base id is not there, so the
# bundled copy of sentence-transformers/all-MiniLM-L6-v2 stands in (resolution rule 3)
model = load_adapted_encoder(sys.argv[2], device="cpu")
vectors = model.encode(json.loads(sys.argv[3]), convert_to_tensor=True, show_progress_bar=False)
print(json.dumps({"url": url, "embeddings": vectors.tolist()}))
"""


def test_push_to_a_loopback_hub_and_load_back(minilm_adapter, mini, tmp_path):
    import subprocess
    import sys

    from hub_fixtures import client_environ
    from hub_server import LoopbackHubServer

    model, _, out = minilm_adapter
    texts = mini.catalogue.texts()[:6]
    repo_id = "org/beauty-item-encoder"
    with LoopbackHubServer() as server:
        env = client_environ(server, tmp_path / "hf_home", OMP_NUM_THREADS="1")
        result = subprocess.run(
            [sys.executable, "-c", PUSH_AND_LOAD, str(out), repo_id, json.dumps(texts)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        uploaded = {p for m, p, status in server.requests if m == "POST" and p.endswith("/commit/main")}
    assert uploaded and not server.errors
    pulled = torch.tensor(json.loads(result.stdout.strip().splitlines()[-1])["embeddings"])
    local = model.encode(texts, convert_to_tensor=True, show_progress_bar=False).cpu()
    torch.testing.assert_close(pulled, local, atol=1e-5, rtol=1e-4)
    assert "local copy" in result.stderr  # the fallback said what it did
