"""The CPU dropout that training uses: same distribution as torch's, causal attention, seeded masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch import nn

from hf_genrec.models.fast_dropout import ATTENTION_IMPLEMENTATION, FastDropout, fast_dropout
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation, TigerProcessor
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.training.trainer import selection_sample


@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drop_rate_scale_and_gradient(p, dtype):
    torch.manual_seed(0)
    x = (torch.rand(257, 401) + 0.5).to(dtype).requires_grad_()
    y = fast_dropout(x, p)
    assert y.dtype == dtype and y.shape == x.shape
    dropped = (y == 0).float().mean().item()
    n = x.numel()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)  # a Bernoulli(p) drop, not a fixed pattern
    kept = y != 0
    scale = (y[kept].float() / x[kept].float()).detach()
    assert torch.allclose(scale, torch.full_like(scale, 1 / (1 - p)), rtol=1e-2)  # inverted dropout
    y.float().sum().backward()
    assert torch.equal(x.grad != 0, kept)  # the gradient flows through the kept elements only
    # the four 16-bit slices of each draw are independent: neighbours are dropped together at rate p^2
    both = ((y[:, :-1] == 0) & (y[:, 1:] == 0)).float().mean().item()
    assert abs(both - p * p) < 5 * math.sqrt(p * p / n)


def test_masks_follow_the_seed_and_eval_is_identity():
    x = torch.randn(64, 33)
    torch.manual_seed(3)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(3)
    b = fast_dropout(x, 0.3)
    c = fast_dropout(x, 0.3)
    assert torch.equal(a, b) and not torch.equal(b, c)
    assert fast_dropout(x, 0.3, training=False) is x
    layer = FastDropout(0.3).eval()
    assert layer(x) is x


@pytest.fixture(scope="module")
def tiny_tiger():
    rng = np.random.default_rng(1)
    table = SemanticIdTable.from_content_codes(list(range(1, 201)), rng.integers(0, 8, (200, 3)), 8)
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=0)
    torch.manual_seed(0)
    config = TigerConfig.from_tokenizer(tokenizer, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, dropout_rate=0.3)
    model = TigerForGenerativeRecommendation(config)
    rows = [
        {"user_id": u, "history": [int(i) for i in rng.choice(table.item_ids, rng.integers(2, 9))], "targets": [int(rng.choice(table.item_ids))]}
        for u in range(6)
    ]
    return model, TigerDataCollator(TigerProcessor(tokenizer, max_history=20))(rows)


def test_models_use_it_everywhere(tiny_tiger):
    model, _ = tiny_tiger
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(type(m) is FastDropout and m.p == 0.3 for m in dropouts)


def test_attention_matches_eager_and_stays_causal(tiny_tiger):
    model, batch = tiny_tiger
    model.eval()
    model.set_attn_implementation("eager")
    reference = model(**batch).logits
    model.set_attn_implementation(ATTENTION_IMPLEMENTATION)
    assert torch.allclose(model(**batch).logits, reference, atol=1e-6)  # the decoder's causal mask is built for it

    model.train()  # with dropout on, position t still cannot see the decoder tokens after it
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    decoder_ids = model.prepare_decoder_input_ids_from_labels(batch["labels"])
    changed = decoder_ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % model.config.vocab_size
    torch.manual_seed(5)
    first = model(**inputs, decoder_input_ids=decoder_ids).logits
    torch.manual_seed(5)
    second = model(**inputs, decoder_input_ids=changed).logits
    assert torch.equal(first[:, :-1], second[:, :-1]) and not torch.equal(first[:, -1], second[:, -1])
    model.set_attn_implementation("eager")
    model.eval()


def test_selection_sample_is_a_fixed_random_subset():
    split = Dataset.from_dict({"user_id": list(range(1000))})
    a = selection_sample(split, 100, seed=42)["user_id"]
    assert a == selection_sample(split, 100, seed=42)["user_id"] != selection_sample(split, 100, seed=7)["user_id"]
    assert len(set(a)) == 100 and a == sorted(a) and max(a) > 500  # spread over the split, not its head
    assert selection_sample(split, 5000, seed=42)["user_id"] == list(range(1000))
