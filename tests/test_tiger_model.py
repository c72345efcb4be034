"""TIGER model: per-level masking and loss, init, level-decoding protocol, collator, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hf_genrec.errors import ConfigError, InvalidInputError, UnknownItemError
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.models.processing_utils import EvalCollator
from hf_genrec.models.registry import register_family
from hf_genrec.models.tiger import TIGER, TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation, TigerProcessor
from hf_genrec.semantic_ids.id_table import SemanticIdTable

TINY = dict(d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, dropout_rate=0.0)


@pytest.fixture(scope="module")
def tokenizer() -> GenRecTokenizer:
    rng = np.random.default_rng(1)
    table = SemanticIdTable.from_content_codes(list(range(1, 301)), rng.integers(0, 10, (300, 3)), 10)
    return GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=30)


@pytest.fixture(scope="module")
def rows(tokenizer):
    rng = np.random.default_rng(2)
    items = tokenizer.semantic_id_table.item_ids
    return [
        {
            "user_id": u,
            "history": [int(i) for i in rng.choice(items, rng.integers(1, 30))],
            "targets": [int(rng.choice(items))],
            "exclude": [int(rng.choice(items))],
        }
        for u in range(12)
    ]


@pytest.fixture(scope="module")
def model(tokenizer) -> TigerForGenerativeRecommendation:
    torch.manual_seed(0)
    return TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **TINY)).eval()


def test_defaults_follow_the_paper():
    cfg = TigerConfig()
    assert (cfg.num_layers, cfg.num_decoder_layers, cfg.d_model, cfg.d_ff, cfg.num_heads, cfg.d_kv) == (4, 4, 128, 1024, 6, 64)
    assert cfg.dropout_rate == 0.1 and cfg.model_type == "tiger"
    with pytest.raises(ConfigError):
        TigerConfig(vocab_size=100, codebook_sizes=[256, 256])


def test_collator_truncates_left_and_builds_labels(tokenizer, rows):
    processor = TigerProcessor(tokenizer, max_history=5)
    batch = {**TigerDataCollator(processor)(rows), **EvalCollator(processor)(rows)}
    levels = tokenizer.num_levels
    longest = max(min(len(r["history"]), 5) for r in rows)
    assert batch["input_ids"].shape == (len(rows), 1 + levels * longest)
    row = rows[int(np.argmax([len(r["history"]) for r in rows]))]
    i = rows.index(row)
    assert batch["input_ids"][i].tolist() == tokenizer.encode_history(row["history"][-5:], row["user_id"])
    assert batch["labels"].tolist() == [tokenizer.encode_item(r["targets"][0]) for r in rows]
    assert batch["targets"] == [r["targets"] for r in rows] and batch["exclude"] == [r["exclude"] for r in rows]
    with pytest.raises(UnknownItemError, match="424242"):
        TigerDataCollator(TigerProcessor(tokenizer))([{"user_id": 1, "history": [424242], "targets": [1]}])
    with pytest.raises(InvalidInputError):
        TigerDataCollator(TigerProcessor(tokenizer))([{"user_id": 1, "history": [], "targets": [1]}])


def test_loss_and_logits_cover_only_each_levels_codes(tokenizer, rows, model):
    cfg = model.config
    processor = TigerProcessor(tokenizer)
    batch = {**EvalCollator(processor)(rows), **TigerDataCollator(processor)(rows)}
    model.zero_grad()
    out = model(**batch)  # eval fields are ignored
    logits = out.logits
    assert logits.shape == (len(rows), cfg.num_levels, cfg.vocab_size)
    manual, count = 0.0, 0
    for level, (off, size) in enumerate(zip(cfg.level_offsets, cfg.codebook_sizes)):
        inside = logits[:, level, off : off + size]
        outside = torch.cat([logits[:, level, :off], logits[:, level, off + size :]], dim=1)
        assert torch.isfinite(inside).all() and (outside <= torch.finfo(logits.dtype).min / 4).all()
        target = batch["labels"][:, level] - off
        manual += torch.nn.functional.cross_entropy(inside, target, reduction="sum")
        count += len(rows)
    # the full-vocabulary cross-entropy equals the per-level one: nothing leaks outside the slice
    full = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), batch["labels"].reshape(-1))
    torch.testing.assert_close(out.loss, manual / count)
    torch.testing.assert_close(full, out.loss)
    out.loss.backward()
    grad = model.lm_head.weight.grad
    code_rows = torch.zeros(cfg.vocab_size, dtype=torch.bool)
    for off, size in zip(cfg.level_offsets, cfg.codebook_sizes):
        code_rows[off : off + size] = True
    assert grad[code_rows].abs().sum() > 0 and grad[~code_rows].abs().sum() == 0
    model.zero_grad()


def test_initial_loss_is_near_uniform(tokenizer, rows):
    """With the head's std d_model^-0.5 the untrained loss is close to log(codebook size), not ~40."""
    torch.manual_seed(3)
    fresh = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **TINY))
    loss = fresh(**TigerDataCollator(TigerProcessor(tokenizer))(rows)).loss.item()
    uniform = float(np.mean([math.log(k) for k in tokenizer.codebook_sizes]))
    assert 0.5 * uniform < loss < 1.6 * uniform


@pytest.mark.parametrize("feed_forward_proj", ["relu", "gated-gelu"])
def test_level_logits_match_forward(tokenizer, rows, feed_forward_proj):
    """The level-decoding passes (packed encoder, one decoder position at a time) equal forward()."""
    torch.manual_seed(0)
    model = TigerForGenerativeRecommendation(
        TigerConfig.from_tokenizer(tokenizer, **TINY, feed_forward_proj=feed_forward_proj)
    ).eval()
    cfg = model.config
    batch = TigerDataCollator(TigerProcessor(tokenizer))(rows)
    mask = batch["attention_mask"]
    assert (mask == 0).any(), "the rows must pad some histories"
    with torch.no_grad():
        out = model(**batch)
        enc, enc_mask = model.encode_for_decoding(batch["input_ids"], mask)
        real = mask.bool()
        torch.testing.assert_close(enc[real], out.encoder_last_hidden_state[real], atol=1e-5, rtol=1e-5)
        assert (enc[~real] == 0).all()
        codes = batch["labels"] - torch.tensor(cfg.level_offsets)
        cache = None
        for level, (off, size) in enumerate(zip(cfg.level_offsets, cfg.codebook_sizes)):
            expected = torch.log_softmax(out.logits[:, level], dim=-1)[:, off : off + size]
            cached, cache = model.level_logits(level, codes[:, :level], enc, enc_mask, cache)
            fresh, _ = model.level_logits(level, codes[:, :level], enc, enc_mask, None)
            torch.testing.assert_close(cached, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(fresh, expected, atol=1e-5, rtol=1e-5)
        # several prefix rows per user share the user's encoder rows (beam layout: user-major)
        for level in (0, 2):
            rep = codes[:, :level].repeat_interleave(3, 0)
            grouped, _ = model.level_logits(level, rep, enc, enc_mask)
            off, size = cfg.level_offsets[level], cfg.codebook_sizes[level]
            expected = torch.log_softmax(out.logits[:, level], -1)[:, off : off + size]
            torch.testing.assert_close(grouped, expected.repeat_interleave(3, 0), atol=1e-5, rtol=1e-5)
    with pytest.raises(InvalidInputError):
        model.level_logits(cfg.num_levels, codes, enc, enc_mask)


def test_level_cache_reorder_follows_the_beams(tokenizer, rows, model):
    """Reordering the cache to other rows (repeats, other beams of the same user) equals decoding those rows afresh."""
    cfg = model.config
    batch = TigerDataCollator(TigerProcessor(tokenizer))(rows)
    codes = batch["labels"][:, : cfg.num_levels] - torch.tensor(cfg.level_offsets)
    users = codes.shape[0]
    with torch.no_grad():
        enc, mask = model.encode_for_decoding(batch["input_ids"], batch["attention_mask"])
        beams = torch.stack([codes, codes.roll(1, 0), codes.roll(2, 0)], 1).reshape(users * 3, -1)  # 3 prefixes a user
        _, cache = model.level_logits(0, beams[:, :0], enc, mask)
        cache.reorder_cache(torch.arange(users).repeat_interleave(3))
        _, cache = model.level_logits(1, beams[:, :1], enc, mask, cache)
        # every user keeps its last beam twice and its first once
        keep = (torch.arange(users)[:, None] * 3 + torch.tensor([2, 2, 0])).reshape(-1)
        cache.reorder_cache(keep)
        cached, _ = model.level_logits(2, beams[keep, :2], enc, mask, cache)
        fresh, _ = model.level_logits(2, beams[keep, :2], enc, mask, None)
    torch.testing.assert_close(cached, fresh, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(cached[0::3], cached[2::3])  # the rows really differ


def test_save_and_auto_load_give_identical_outputs(tokenizer, rows, model, tmp_path):
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    register_family(TIGER)  # importing hf_genrec registered it; registering again is harmless
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).level_offsets == model.config.level_offsets
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is TigerForGenerativeRecommendation
    assert loaded.decoder.embed_tokens.weight.data_ptr() == loaded.shared.weight.data_ptr()
    auto_tok = AutoTokenizer.from_pretrained(tmp_path)
    batch = TigerDataCollator(TigerProcessor(auto_tok))(rows)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, atol=0, rtol=0)
        generated = loaded.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=3)
    assert generated.shape == (len(rows), 1 + tokenizer.num_levels)


def test_from_t5_pretrained_copies_the_stacks(tokenizer, tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4))
    t5.save_pretrained(tmp_path)
    tiger = TigerForGenerativeRecommendation.from_t5_pretrained(str(tmp_path), tokenizer)
    assert tiger.config.d_model == 32 and tiger.config.vocab_size == len(tokenizer)
    for name in ("encoder.block.1.layer.1.DenseReluDense.wo.weight", "decoder.block.0.layer.1.EncDecAttention.q.weight"):
        torch.testing.assert_close(tiger.state_dict()[name], t5.state_dict()[name], atol=0, rtol=0)
