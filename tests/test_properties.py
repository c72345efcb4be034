"""Property-based tests (hypothesis): constrained decoding, metrics, disambiguation, tokenizer round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_genrec.evaluation import ranking_metrics
from hf_genrec.semantic_ids.constraints import SemanticIdLogitsProcessor
from hf_genrec.semantic_ids.id_trie import build_id_trie
from hf_genrec.generation import fast_beam_search
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.semantic_ids.id_table import SemanticIdTable

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------------
# Random catalogues and a fake model speaking the level-decoding protocol
# ---------------------------------------------------------------------------------------------------
@st.composite
def catalogues(draw, max_levels: int = 3, max_size: int = 5, max_items: int = 30) -> SemanticIdTable:
    """A random bijection item id <-> code tuple (sparse: most prefixes name no item)."""
    sizes = draw(st.lists(st.integers(1, max_size), min_size=1, max_size=max_levels))
    capacity = math.prod(sizes)
    tuples = draw(
        st.sets(st.tuples(*[st.integers(0, s - 1) for s in sizes]), min_size=1, max_size=min(max_items, capacity))
    )
    codes = sorted(tuples)
    item_ids = draw(st.lists(st.integers(0, 10_000), min_size=len(codes), max_size=len(codes), unique=True))
    return SemanticIdTable(item_ids, np.asarray(codes, dtype=np.int64).reshape(len(codes), len(sizes)), sizes)


class RandomLevelModel:
    """Random log-probabilities that depend only on (user, level, prefix): a deterministic fake decoder.

    Some scores are -inf (``blocked``) so that the decoder must also cope with impossible codes.
    """

    def __init__(self, codebook_sizes, seed: int, blocked: float = 0.0, buckets: int = 97) -> None:
        g = torch.Generator().manual_seed(seed)
        self.buckets = buckets
        self.tables = []
        for size in codebook_sizes:
            logits = torch.randn(buckets, size, generator=g) * 3
            if blocked:
                logits = logits.masked_fill(torch.rand(buckets, size, generator=g) < blocked, float("-inf"))
            self.tables.append(logits)

    def _key(self, users: torch.Tensor, prev_codes: torch.Tensor) -> torch.Tensor:
        key = users * 7919
        for j in range(prev_codes.shape[1]):
            key = key * 31 + prev_codes[:, j] + 1
        return key % self.buckets

    def log_probs(self, level: int, users: torch.Tensor, prev_codes: torch.Tensor) -> torch.Tensor:
        rows = self.tables[level][self._key(users, prev_codes)]
        finite = torch.isfinite(rows).any(-1, keepdim=True)  # log-softmax of an all -inf row is NaN
        return torch.where(finite, torch.log_softmax(rows, -1), rows)

    # the level-decoding protocol
    def encode_for_decoding(self, input_ids, attention_mask=None):
        return input_ids[:, :1].float().unsqueeze(-1), torch.ones(input_ids.shape[0], 1, dtype=torch.long)

    def level_logits(self, level, prev_codes, encoder_hidden_states, encoder_attention_mask, past_key_values=None):
        users = encoder_hidden_states[:, 0, 0].long()
        assert users.shape[0] == prev_codes.shape[0], "encoder rows must be repeated to the beam rows"
        return self.log_probs(level, users, prev_codes), None


def _item_scores(model: RandomLevelModel, table: SemanticIdTable, user: int) -> torch.Tensor:
    """Brute force: every catalogue item's total log-probability for ``user``."""
    codes = torch.as_tensor(table.codes)
    users = torch.full((len(table),), user, dtype=torch.long)
    total = torch.zeros(len(table), dtype=torch.float)
    for level in range(table.num_levels):
        logp = model.log_probs(level, users, codes[:, :level])
        total = total + logp.gather(1, codes[:, level : level + 1]).squeeze(1)
    return total


@SETTINGS
@given(
    table=catalogues(),
    seed=st.integers(0, 2**31 - 1),
    blocked=st.sampled_from([0.0, 0.3]),
    num_beams=st.integers(1, 12),
    data=st.data(),
)
def test_fast_beam_search_only_yields_catalogue_items(table, seed, blocked, num_beams, data):
    top_k = data.draw(st.integers(1, num_beams), label="top_k")
    users = data.draw(st.lists(st.integers(0, 50), min_size=1, max_size=3), label="users")
    exclude = data.draw(st.lists(st.lists(st.sampled_from(table.item_ids), max_size=3), min_size=len(users), max_size=len(users)), label="exclude")
    if data.draw(st.booleans(), label="no exclude"):  # the search may then skip last-level beams that cannot win
        exclude = None
    model = RandomLevelModel(table.codebook_sizes, seed, blocked)
    tables = build_id_trie(table)
    input_ids = torch.tensor(users)[:, None]
    rows, scores = fast_beam_search(model, input_ids, None, tables, num_beams=num_beams, top_k=top_k, exclude=exclude)
    assert rows.shape == scores.shape == (len(users), top_k)
    for b, user in enumerate(users):
        valid = rows[b] >= 0
        # never an ID outside the catalogue; missing slots are -1 with -inf, and only at the end
        assert int(rows[b].max()) < len(table)
        assert torch.equal(valid, torch.isfinite(scores[b]))
        assert not valid[1:].gt(valid[:-1]).any()
        chosen = rows[b][valid].tolist()
        assert len(set(chosen)) == len(chosen)
        excluded = [table.row_of(i) for i in exclude[b]] if exclude else []
        assert not set(chosen) & set(excluded)
        assert torch.all(scores[b][valid][:-1] >= scores[b][valid][1:])
        truth = _item_scores(model, table, user)
        assert torch.allclose(scores[b][valid], truth[chosen], atol=1e-5)  # the score is the item's log-probability
        if num_beams >= len(table):  # beams hold every prefix: the search is exhaustive, hence exact
            truth[excluded] = float("-inf")
            reachable = int(torch.isfinite(truth).sum())
            best = truth.topk(min(top_k, len(table))).values
            assert len(chosen) == min(top_k, reachable)
            assert torch.allclose(scores[b][valid], best[: len(chosen)], atol=1e-5)


@SETTINGS
@given(table=catalogues(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 4))
def test_logits_processor_allows_exactly_the_catalogue_continuations(table, seed, batch):
    """Decoding token by token with the processor: any finite choice leads to a catalogue item, and
    at every step the finite tokens are exactly the codes that extend the prefix to some item."""
    offsets = list(np.cumsum([3] + table.codebook_sizes[:-1]))
    vocab = 3 + sum(table.codebook_sizes)
    eos = 1
    processor = SemanticIdLogitsProcessor(build_id_trie(table), offsets, eos, prompt_length=1)
    rng = np.random.default_rng(seed)
    prefixes = {tuple(row[:level]) for row in table.codes.tolist() for level in range(table.num_levels + 1)}
    input_ids = torch.zeros(batch, 1, dtype=torch.long)  # decoder start token
    for level in range(table.num_levels + 1):
        scores = torch.as_tensor(rng.normal(size=(batch, vocab)), dtype=torch.float)
        out = processor(input_ids, scores.clone())
        next_tokens = []
        for b in range(batch):
            prefix = tuple((input_ids[b, 1:] - torch.tensor(offsets[:level], dtype=torch.long)).tolist())
            assert prefix in prefixes
            finite = set(torch.nonzero(torch.isfinite(out[b])).flatten().tolist())
            if level == table.num_levels:
                assert finite == {eos} and table.item_of(prefix) is not None
                continue
            expected = {offsets[level] + code for code in range(table.codebook_sizes[level]) if prefix + (code,) in prefixes}
            assert finite == expected
            assert torch.equal(out[b, sorted(finite)], scores[b, sorted(finite)])  # kept scores are untouched
            next_tokens.append(int(rng.choice(sorted(finite))))
        if level < table.num_levels:
            input_ids = torch.cat([input_ids, torch.tensor(next_tokens)[:, None]], dim=1)
    # an ID that names no item is blocked at the first code that leaves the catalogue
    full = {tuple(r) for r in table.codes.tolist()}
    missing = next((c for c in np.ndindex(*table.codebook_sizes) if c not in full), None)
    if missing is not None:
        ids = torch.tensor([[0] + [offsets[l] + c for l, c in enumerate(missing)]])
        stopped = False
        for level in range(table.num_levels):
            out = processor(ids[:, : level + 1], torch.zeros(1, vocab))
            if not torch.isfinite(out[0, ids[0, level + 1]]):
                stopped = True
                break
        assert stopped


# ---------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------
def _reference(ranked: list[int], targets: list[int], k: int) -> tuple[float, float]:
    """Textbook Recall@K / NDCG@K: a repeated item counts at its first rank only."""
    seen, top = set(), []
    for item in ranked:
        if item not in seen:
            seen.add(item)
            top.append(item)
        else:
            top.append(None)
    top = top[:k]
    wanted = set(targets)
    hits = [i for i, item in enumerate(top) if item is not None and item in wanted]
    dcg = sum(1 / math.log2(i + 2) for i in hits)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), k)))
    return len(hits) / len(wanted), dcg / idcg


@SETTINGS
@given(
    users=st.lists(
        st.tuples(st.lists(st.integers(0, 25), max_size=12), st.lists(st.integers(0, 25), min_size=1, max_size=6)),
        min_size=1, max_size=8,
    ),
    ks=st.lists(st.integers(1, 15), min_size=1, max_size=3, unique=True),
)
def test_recall_and_ndcg_match_a_brute_force_reference(users, ks):
    ranked = [r for r, _ in users]
    targets = [t for _, t in users]
    per_user = ranking_metrics(ranked, targets, ks=ks, reduce=False)
    means = ranking_metrics(ranked, targets, ks=ks)
    for k in ks:
        for u, (r, t) in enumerate(users):
            recall, ndcg = _reference(r, t, k)
            assert 0.0 <= float(per_user[f"recall@{k}"][u]) <= 1.0 and 0.0 <= float(per_user[f"ndcg@{k}"][u]) <= 1.0
            assert float(per_user[f"recall@{k}"][u]) == pytest.approx(recall, abs=1e-12)
            assert float(per_user[f"ndcg@{k}"][u]) == pytest.approx(ndcg, abs=1e-12)
        assert means[f"recall@{k}"] == pytest.approx(sum(_reference(r, t, k)[0] for r, t in users) / len(users), abs=1e-12)
        assert means[f"ndcg@{k}"] == pytest.approx(sum(_reference(r, t, k)[1] for r, t in users) / len(users), abs=1e-12)


# ---------------------------------------------------------------------------------------------------
# Disambiguation and the tokenizer
# ---------------------------------------------------------------------------------------------------
@SETTINGS
@given(
    levels=st.integers(1, 3),
    size=st.integers(1, 4),
    n=st.integers(1, 60),
    seed=st.integers(0, 2**31 - 1),
)
def test_disambiguation_always_yields_unique_ids(levels, size, n, seed):
    rng = np.random.default_rng(seed)
    content = rng.integers(0, size, (n, levels))  # few codes: many items share content codes
    item_ids = rng.choice(100_000, n, replace=False).tolist()
    table = SemanticIdTable.from_content_codes(item_ids, content, size)
    assert table.num_levels == levels + 1 and table.content_levels == levels
    assert len({tuple(row) for row in table.codes.tolist()}) == n
    assert np.array_equal(table.codes[:, :levels], content)  # content codes are kept as they are
    groups: dict = {}
    for row, prefix in enumerate(map(tuple, content.tolist())):
        assert table.codes[row, -1] == groups.setdefault(prefix, 0)  # 0, 1, 2... in catalogue order
        groups[prefix] += 1
    assert table.codebook_sizes == [size] * levels + [max(groups.values())]
    assert all(table.item_of(table.codes_of(i)) == i for i in item_ids)
    assert SemanticIdTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table
    assert table.stats()["unique_ids"] == n


@SETTINGS
@given(table=catalogues(max_levels=4, max_size=6, max_items=40), data=st.data())
def test_tokenizer_round_trip_is_the_identity(table, data):
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=data.draw(st.sampled_from([0, 3])))
    items = data.draw(st.lists(st.sampled_from(table.item_ids), min_size=1, max_size=8), label="items")
    for item in items:
        ids = tokenizer.encode_item(item)
        assert len(ids) == table.num_levels
        assert tokenizer.decode_items(ids) == [item] and tokenizer.decode_item(ids) == item
        assert [tokenizer.token_to_level_code(t) for t in ids] == list(enumerate(table.codes_of(item)))
    history = tokenizer.encode_history(items)
    assert tokenizer.decode_items(history) == items
    # generate()-style rows: decoder start token, the codes, EOS
    rows = [[tokenizer.pad_token_id, *tokenizer.encode_item(i), tokenizer.eos_token_id] for i in items]
    assert tokenizer.decode_items(torch.tensor(rows)) == items
    # the text form of the code tokens reads back to the same ids
    text = "".join(tokenizer.convert_ids_to_tokens(history))
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == history
