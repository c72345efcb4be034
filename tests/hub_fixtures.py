"""Builders shared by the Hub tests: a tiny saved model directory that looks like an hf_genrec checkpoint.

The Hub code must not depend on the model classes, so any ``PreTrainedModel`` will do: a tiny T5
plus a WordLevel tokenizer over semantic-ID tokens, built offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_genrec.semantic_ids.id_table import SemanticIdTable

LEVELS, CODES = 3, 4
SPECIAL = ["<pad>", "</s>", "<unk>"]
ID_TOKENS = [f"<a{level}_{code}>" for level in range(LEVELS) for code in range(CODES)]
SAMPLE_TEXTS = ["<a0_1> <a1_2> <a2_0> <a0_3> <a1_1> <a2_2>", "<a0_0> <a1_3> <a2_1>"]
EVAL_RESULTS = {
    "dataset": "amazon-beauty",
    "split": "test",
    "protocol": "leave-one-out: last item = test target, second-to-last = validation target",
    "recall@5": 0.0123,
    "recall@10": 0.0456,
    "ndcg@5": 0.0078,
    "ndcg@10": 0.0189,
    "users": 22363,
}
RECIPE_YAML = """# TIGER on Amazon Beauty
dataset: amazon-beauty
learning_rate: 0.001
per_device_train_batch_size: 256
max_steps: 200000
"""


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL + ID_TOKENS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_table() -> SemanticIdTable:
    rng = np.random.default_rng(0)
    content = rng.integers(0, CODES, size=(12, LEVELS - 1))
    return SemanticIdTable.from_content_codes(list(range(100, 112)), content, CODES, method="test-random")


def build_model_dir(directory: str | Path, *, eval_results: bool = True, recipe: bool = True) -> Path:
    """Save a tiny T5 + tokenizer + semantic_ids.json (+ eval_results.json, recipe.yaml) into ``directory``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    directory = Path(directory)
    tokenizer = build_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_decoder_layers=1,
        num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    build_table().save(directory)
    if eval_results:
        (directory / "eval_results.json").write_text(json.dumps(EVAL_RESULTS), encoding="utf-8")
    if recipe:
        (directory / "recipe.yaml").write_text(RECIPE_YAML, encoding="utf-8")
    return directory


def model_outputs(model, tokenizer) -> dict:
    """Token ids and logits of a fixed batch: equal for the same weights and tokenizer."""
    import torch

    batch = tokenizer(SAMPLE_TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=torch.zeros((len(SAMPLE_TEXTS), 2), dtype=torch.long)).logits
    return {"input_ids": batch["input_ids"].tolist(), "logits": logits.tolist()}


def client_environ(server, hf_home, **extra: str) -> dict:
    """Environment of a client process of the loopback Hub: the server's settings, this folder (fixtures)
    importable, and this process's ``PYTHONPATH`` kept, so the client runs the same source tree as the test."""
    import os

    tests_dir = str(Path(__file__).resolve().parent)
    pythonpath = os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **server.client_env(hf_home), "PYTHONPATH": pythonpath, **extra}
