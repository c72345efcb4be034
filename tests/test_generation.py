"""Constrained decoding: ID tables, generate() constraints, fast beam search == generate(), recommend()."""

from __future__ import annotations

import importlib
import math
import threading

import numpy as np
import pytest
import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from hf_genrec.errors import InvalidInputError, UnknownItemError
from hf_genrec.semantic_ids.constraints import SemanticIdLogitsProcessor, make_prefix_allowed_tokens_fn
from hf_genrec.semantic_ids.id_trie import build_id_trie
from hf_genrec.generation import fast_beam_search, recommend
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation, TigerProcessor
from hf_genrec.semantic_ids.id_table import SemanticIdTable

NUM_BEAMS = 8


@pytest.fixture(scope="module")
def tokenizer() -> GenRecTokenizer:
    rng = np.random.default_rng(0)
    # sparse random catalogue: most code prefixes do not exist, so the constraint matters
    table = SemanticIdTable.from_content_codes(list(range(5000, 5400)), rng.integers(0, 12, (400, 3)), 12)
    return GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=20)


@pytest.fixture(scope="module")
def batch(tokenizer):
    rng = np.random.default_rng(1)
    items = tokenizer.semantic_id_table.item_ids
    rows = [
        {"user_id": u, "history": [int(i) for i in rng.choice(items, rng.integers(1, 12))], "targets": [int(rng.choice(items[:40]))]}
        for u in range(24)
    ]
    return TigerDataCollator(TigerProcessor(tokenizer))(rows)


@pytest.fixture(scope="module")
def model(tokenizer, batch) -> TigerForGenerativeRecommendation:
    """A tiny TIGER trained for a few steps, so scores are peaked like a real model's."""
    torch.manual_seed(0)
    cfg = TigerConfig.from_tokenizer(tokenizer, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, dropout_rate=0.0)
    model = TigerForGenerativeRecommendation(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(10):
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


@pytest.fixture(scope="module")
def tables(tokenizer):
    return build_id_trie(tokenizer.semantic_id_table)


def _generate(model, batch, **kwargs):
    with torch.no_grad():
        out = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=NUM_BEAMS,
            num_return_sequences=NUM_BEAMS, length_penalty=0.0, do_sample=False,
            output_scores=True, return_dict_in_generate=True, **kwargs,
        )
    n = batch["input_ids"].shape[0]
    return out.sequences.view(n, NUM_BEAMS, -1), out.sequences_scores.view(n, NUM_BEAMS)


def test_id_trie_accept_exactly_the_catalogue(tokenizer, tables):
    table = tokenizer.semantic_id_table
    codes = torch.as_tensor(table.codes)
    assert torch.equal(tables.state_of(codes), torch.arange(len(table)))
    rng = np.random.default_rng(5)
    random_codes = np.stack([rng.integers(0, k, 2000) for k in table.codebook_sizes], axis=1)
    present = {tuple(r) for r in table.codes.tolist()}
    expected = [table.row_of(table.item_of(r)) if tuple(r) in present else -1 for r in random_codes.tolist()]
    assert tables.state_of(torch.as_tensor(random_codes)).tolist() == expected
    # allowed codes after each valid prefix are exactly the continuations present in the catalogue
    for depth in range(table.num_levels):
        prefixes = {tuple(r[:depth]) for r in table.codes.tolist()}
        for prefix in list(prefixes)[:20]:
            state = tables.state_of(torch.tensor([prefix], dtype=torch.long).view(1, depth))
            allowed = tables.allowed(depth, state)[0].nonzero().view(-1).tolist()
            assert allowed == sorted({r[depth] for r in table.codes.tolist() if tuple(r[:depth]) == prefix})


def test_prefix_fn_and_tensor_processor_agree(tokenizer, tables, model, batch):
    fn = make_prefix_allowed_tokens_fn(tokenizer)
    processor = SemanticIdLogitsProcessor(tables, tokenizer.level_offsets, tokenizer.eos_token_id)
    table = tokenizer.semantic_id_table
    rng = np.random.default_rng(3)
    scores = torch.randn(30, len(tokenizer))
    for depth in range(table.num_levels + 1):
        rows = table.codes[rng.integers(0, len(table), 30), :depth] + np.asarray(tokenizer.level_offsets[:depth])
        seqs = torch.cat([torch.zeros(30, 1, dtype=torch.long), torch.as_tensor(rows, dtype=torch.long)], dim=1)
        mask = torch.full_like(scores, float("-inf"))
        for i in range(30):
            mask[i, fn(0, seqs[i])] = 0
        torch.testing.assert_close(processor(seqs, scores), scores + mask, atol=0, rtol=0)
    seq_fn, score_fn = _generate(model, batch, prefix_allowed_tokens_fn=fn)
    seq_proc, score_proc = _generate(model, batch, logits_processor=[processor])
    assert torch.equal(seq_fn, seq_proc)
    torch.testing.assert_close(score_fn, score_proc)


def test_fast_beam_search_equals_generate(tokenizer, tables, model, batch):
    sequences, gen_scores = _generate(model, batch, prefix_allowed_tokens_fn=make_prefix_allowed_tokens_fn(tokenizer))
    gen_items = np.array(tokenizer.decode_items(sequences.reshape(-1, sequences.shape[-1]))).reshape(sequences.shape[:2])
    assert (gen_items != None).all()  # noqa: E711 -- constrained generate() never names a missing ID
    rows, scores = fast_beam_search(model, batch["input_ids"], batch["attention_mask"], tables, num_beams=NUM_BEAMS, top_k=NUM_BEAMS)
    assert (rows >= 0).all()
    fast_items = tables.item_ids[rows].numpy()
    assert (fast_items == gen_items).mean() >= 0.99  # ties aside
    torch.testing.assert_close(scores, gen_scores, atol=1e-4, rtol=1e-4)
    # a smaller top_k is a prefix of the same ranking
    rows5, scores5 = fast_beam_search(model, batch["input_ids"], batch["attention_mask"], tables, num_beams=NUM_BEAMS, top_k=5)
    assert torch.equal(rows5, rows[:, :5]) and torch.equal(scores5, scores[:, :5])


class NaiveProtocolModel(torch.nn.Module):
    """The level-decoding protocol written the obvious way on forward() with a transformers cache,
    as another model (e.g. ColaRec) might: no encoder broadcasting, EncoderDecoderCache reordering."""

    def __init__(self, tiger):
        super().__init__()
        self.tiger = tiger

    def encode_for_decoding(self, input_ids, attention_mask):
        return self.tiger.encode_for_decoding(input_ids, attention_mask)

    def level_logits(self, level, prev_codes, encoder_hidden_states, encoder_attention_mask, past_key_values=None):
        cfg = self.tiger.config
        if past_key_values is None:
            past_key_values = EncoderDecoderCache(DynamicCache(), DynamicCache())
        start = torch.full((prev_codes.shape[0], 1), cfg.decoder_start_token_id, dtype=torch.long)
        tokens = torch.cat([start, prev_codes + torch.tensor(cfg.level_offsets[:level], dtype=torch.long)], dim=1)
        out = self.tiger(
            encoder_outputs=(encoder_hidden_states,), attention_mask=encoder_attention_mask,
            decoder_input_ids=tokens[:, past_key_values.get_seq_length():], cache=past_key_values, use_cache=True,
        )
        off, size = cfg.level_offsets[level], cfg.codebook_sizes[level]
        return torch.log_softmax(out.logits[:, -1].float(), -1)[:, off : off + size], out.cache


def test_fast_beam_search_works_with_a_generic_protocol_model(tables, model, batch):
    args = (batch["input_ids"], batch["attention_mask"], tables)
    rows, scores = fast_beam_search(model, *args, num_beams=NUM_BEAMS, top_k=6)
    naive_rows, naive_scores = fast_beam_search(NaiveProtocolModel(model), *args, num_beams=NUM_BEAMS, top_k=6)
    assert (rows == naive_rows).float().mean() >= 0.99
    torch.testing.assert_close(scores, naive_scores, atol=1e-4, rtol=1e-4)


def test_exclude_removes_items_from_the_ranking(tokenizer, tables, model, batch):
    args = (model, batch["input_ids"], batch["attention_mask"], tables)
    rows, scores = fast_beam_search(*args, num_beams=NUM_BEAMS, top_k=NUM_BEAMS)
    item_ids = tables.item_ids[rows]
    exclude = [[int(items[0]), int(items[3]), 999999] for items in item_ids]  # 999999: not in the catalogue
    ex_rows, ex_scores = fast_beam_search(*args, num_beams=NUM_BEAMS, top_k=6, exclude=exclude)
    for u in range(len(exclude)):
        keep = [i for i in range(NUM_BEAMS) if i not in (0, 3)]
        assert ex_rows[u].tolist() == rows[u, keep].tolist()
        torch.testing.assert_close(ex_scores[u], scores[u, keep])
    short_rows, short_scores = fast_beam_search(*args, num_beams=NUM_BEAMS, top_k=NUM_BEAMS, exclude=exclude)
    assert (short_rows[:, -2:] == -1).all() and torch.isinf(short_scores[:, -2:]).all()


def test_sharded_search_ranks_like_one_batch(tables, model, batch):
    """Users split over parallel threads get the ranking they get in one batch; the caller's thread count stays."""
    args = (model, batch["input_ids"], batch["attention_mask"], tables)
    exclude = [[int(tables.item_ids[u])] for u in range(batch["input_ids"].shape[0])]
    threads = torch.get_num_threads()
    one_rows, one_scores = fast_beam_search(*args, num_beams=NUM_BEAMS, top_k=6, exclude=exclude, num_shards=1)
    with torch.inference_mode():
        rows, scores = fast_beam_search(*args, num_beams=NUM_BEAMS, top_k=6, exclude=exclude, num_shards=5)
    assert torch.equal(rows, one_rows)
    torch.testing.assert_close(scores, one_scores, atol=1e-5, rtol=1e-5)
    started_later = []
    probe = threading.Thread(target=lambda: started_later.append(torch.get_num_threads()))
    probe.start()
    probe.join()
    assert torch.get_num_threads() == threads and started_later == [threads]
    with pytest.raises(InvalidInputError, match="exclude has 2 lists for a batch of 24"):
        fast_beam_search(*args, num_beams=NUM_BEAMS, top_k=6, exclude=[[1], [2]], num_shards=5)


def test_padding_columns_around_the_batch_change_nothing(tokenizer, tables, model, batch):
    """Columns that are padding for every user (a batch padded past its longest history, on either
    side) are cut before encoding; relative positions stay, so do rankings and scores."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pad = tokenizer.pad_token_id
    wide_ids = torch.cat([torch.full((ids.shape[0], 3), pad), ids, torch.full((ids.shape[0], 5), pad)], 1)
    wide_mask = torch.cat([torch.zeros(ids.shape[0], 3, dtype=mask.dtype), mask, torch.zeros(ids.shape[0], 5, dtype=mask.dtype)], 1)
    rows, scores = fast_beam_search(model, ids, mask, tables, num_beams=NUM_BEAMS, top_k=6, num_shards=1)
    wide_rows, wide_scores = fast_beam_search(model, wide_ids, wide_mask, tables, num_beams=NUM_BEAMS, top_k=6, num_shards=1)
    assert torch.equal(wide_rows, rows)
    torch.testing.assert_close(wide_scores, scores, atol=1e-5, rtol=1e-5)
    # sliced apart, the short half is cut to its own longest history
    short = mask.sum(1) <= mask.sum(1).median()
    half_rows, half_scores = fast_beam_search(model, ids[short], mask[short], tables, num_beams=NUM_BEAMS, top_k=6)
    assert torch.equal(half_rows, rows[short])
    torch.testing.assert_close(half_scores, scores[short], atol=1e-5, rtol=1e-5)


class LevelCallRecorder:
    """Wraps a protocol model and records (level, rows, cached) of every level_logits call."""

    def __init__(self, model):
        self.model, self.calls = model, []
        self.level_decoding_broadcasts_encoder = model.level_decoding_broadcasts_encoder

    def encode_for_decoding(self, **kwargs):
        return self.model.encode_for_decoding(**kwargs)

    def level_logits(self, level, prev_codes, enc, mask, past_key_values=None):
        self.calls.append((level, prev_codes.shape[0], past_key_values is not None))
        return self.model.level_logits(level, prev_codes, enc, mask, past_key_values)


@pytest.mark.parametrize("first_pass", [0.0, 0.6])
def test_skipping_last_level_beams_is_exact(tables, model, batch, monkeypatch, first_pass):
    """Scoring each user's best beams first and the rest only where they could still win changes nothing."""
    search = importlib.import_module("hf_genrec.generation.fast_beam_search")
    args = (batch["input_ids"], batch["attention_mask"], tables)
    monkeypatch.setattr(search, "LAST_LEVEL_FIRST_PASS", 1.0)  # every beam in one pass
    full_rows, full_scores = fast_beam_search(model, *args, num_beams=NUM_BEAMS, top_k=3, num_shards=1)
    monkeypatch.setattr(search, "LAST_LEVEL_FIRST_PASS", first_pass)
    recorder = LevelCallRecorder(model)
    rows, scores = fast_beam_search(recorder, *args, num_beams=NUM_BEAMS, top_k=3, num_shards=1)
    assert torch.equal(rows, full_rows)
    torch.testing.assert_close(scores, full_scores, atol=1e-5, rtol=1e-5)
    last = tables.num_levels - 1
    users = batch["input_ids"].shape[0]
    first = max(3, math.ceil(first_pass * NUM_BEAMS))
    passes = [(rows_, cached) for level, rows_, cached in recorder.calls if level == last]
    assert passes[0] == (users * first, True)  # the best beams
    if first_pass == 0.0:  # three beams a user rarely settle the top 3: the others are scored for some users
        assert len(passes) == 2 and passes[1][1] and 0 < passes[1][0] <= users * (NUM_BEAMS - first)
    with pytest.raises(InvalidInputError):  # a model answering the first pass with the wrong shape is caught
        fast_beam_search(BadShapeAtLastLevel(model, last), *args, num_beams=NUM_BEAMS, top_k=3, num_shards=1)


class BadShapeAtLastLevel(LevelCallRecorder):
    def __init__(self, model, last):
        super().__init__(model)
        self.last = last

    def level_logits(self, level, prev_codes, enc, mask, past_key_values=None):
        logp, cache = super().level_logits(level, prev_codes, enc, mask, past_key_values)
        return (logp[:, :-1] if level == self.last else logp), cache


def test_recommend_validates_and_is_thread_safe(tokenizer, tables, model):
    rng = np.random.default_rng(7)
    items = tokenizer.semantic_id_table.item_ids
    histories = [[int(i) for i in rng.choice(items, 5)] for _ in range(10)]
    result = recommend(model, TigerProcessor(tokenizer), histories, k=5, num_beams=NUM_BEAMS, user_ids=list(range(10)), batch_size=4)
    assert len(result) == 10 and all(len(r) == 5 for r in result)
    catalogue = set(items)
    for recs in result:
        assert all(item in catalogue for item, _ in recs)
        scores = [s for _, s in recs]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
    outputs = [None] * 4

    def run(i):
        outputs[i] = recommend(model, TigerProcessor(tokenizer), histories, k=5, num_beams=NUM_BEAMS, user_ids=list(range(10)), batch_size=4)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o == result for o in outputs)
    with pytest.raises(InvalidInputError, match="num_beams"):
        recommend(model, TigerProcessor(tokenizer), histories, k=NUM_BEAMS + 1, num_beams=NUM_BEAMS)
    with pytest.raises(InvalidInputError, match="catalogue"):
        recommend(model, TigerProcessor(tokenizer), histories, k=500, num_beams=600)
    with pytest.raises(InvalidInputError, match="history 1"):
        recommend(model, TigerProcessor(tokenizer), [[items[0]], []], k=3)
    with pytest.raises(UnknownItemError, match="31337"):
        recommend(model, TigerProcessor(tokenizer), [[items[0], 31337]], k=3)


def test_recommend_batches_by_length_but_answers_in_input_order(tokenizer, model):
    """Histories of mixed lengths are decoded length-sorted; each answer must still be its own user's."""
    rng = np.random.default_rng(11)
    items = tokenizer.semantic_id_table.item_ids
    histories = [[int(i) for i in rng.choice(items, n)] for n in (9, 1, 6, 2, 12, 3, 7, 1, 4)]
    users = list(range(100, 109))
    exclude = [[], [items[3]], [], [], [items[5], items[6]], [], [], [], []]
    together = recommend(model, TigerProcessor(tokenizer), histories, k=5, num_beams=NUM_BEAMS, user_ids=users, exclude=exclude, batch_size=4)
    alone = [
        recommend(model, TigerProcessor(tokenizer), [h], k=5, num_beams=NUM_BEAMS, user_ids=[u], exclude=[e], batch_size=1)[0]
        for h, u, e in zip(histories, users, exclude)
    ]
    assert [[i for i, _ in r] for r in together] == [[i for i, _ in r] for r in alone]
    for got, want in zip(together, alone):
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    assert len({tuple(i for i, _ in r) for r in together}) > 1, "users must get different lists for the test to mean anything"
