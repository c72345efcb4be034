"""GenRecTokenizer: vocabulary layout, item encoding, save/load and AutoTokenizer round trips."""

from __future__ import annotations

import inspect
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from hf_genrec.errors import InvalidInputError, UnknownItemError
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer, user_bucket
from hf_genrec.semantic_ids.id_table import SemanticIdTable


@pytest.fixture(scope="module")
def table() -> SemanticIdTable:
    rng = np.random.default_rng(0)
    return SemanticIdTable.from_content_codes(list(range(100, 400)), rng.integers(0, 12, (300, 3)), 12)


@pytest.fixture(scope="module")
def item_texts(data_dir) -> list[str]:
    with open(data_dir / "amazon-beauty" / "items.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in itertools.islice(fh, 400)]
    return [f"{r['title']}. {r.get('brand') or ''}" for r in rows]


@pytest.fixture(scope="module")
def tokenizer(table, item_texts) -> GenRecTokenizer:
    return GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=50, text_corpus=item_texts, text_vocab_size=600)


def test_layout_and_item_encoding(tokenizer, table):
    offsets = tokenizer.level_offsets
    assert len(offsets) == table.num_levels
    for level, size in enumerate(table.codebook_sizes):
        ids = [tokenizer.code_token_id(level, c) for c in range(size)]
        assert ids == list(range(offsets[level], offsets[level] + size))
        last = size - 1
        assert tokenizer.convert_ids_to_tokens(ids[last]) == f"<{'abcd'[level]}_{last}>"
        assert tokenizer.token_to_level_code(ids[last]) == (level, last)
    assert tokenizer.token_to_level_code(tokenizer.pad_token_id) is None
    item = table.item_ids[7]
    codes = tokenizer.encode_item(item)
    assert [tokenizer.token_to_level_code(t) for t in codes] == list(enumerate(table.codes_of(item)))
    history = tokenizer.encode_history([101, 102, 103], user_id=42)
    assert history[0] == tokenizer.user_token_id(42)
    assert tokenizer.convert_ids_to_tokens(history[0]).startswith("<u_")
    assert history[1:] == tokenizer.encode_item(101) + tokenizer.encode_item(102) + tokenizer.encode_item(103)
    assert tokenizer.encode_history(list(range(100, 130)), max_items=5) == sum((tokenizer.encode_item(i) for i in range(125, 130)), [])
    assert tokenizer.decode_items(history) == [101, 102, 103]
    # the text form parses back into exactly the same tokens
    assert tokenizer(tokenizer.decode(history), add_special_tokens=False).input_ids == history


def test_decode_items_marks_unknown_ids(tokenizer, table):
    present = {tuple(r) for r in table.codes.tolist()}
    missing = next(c for c in itertools.product(range(12), range(12), range(12), [0]) if c not in present)
    ids = [tokenizer.code_token_id(level, c) for level, c in enumerate(missing)]
    assert tokenizer.decode_items(ids + tokenizer.encode_item(150)) == [None, 150]
    rows = torch.tensor([[0] + tokenizer.encode_item(150), [0] + ids])  # generate()-style output
    assert tokenizer.decode_items(rows) == [150, None]
    with pytest.raises(UnknownItemError):
        tokenizer.decode_item(ids)


def test_bad_input_errors(tokenizer):
    with pytest.raises(UnknownItemError, match="99999"):
        tokenizer.encode_history([101, 99999])
    with pytest.raises(UnknownItemError, match="99999"):
        tokenizer.encode_item(99999)
    with pytest.raises(InvalidInputError):
        tokenizer.encode_history([])
    with pytest.raises(InvalidInputError, match="history 1"):
        tokenizer.batch_encode_histories([[101], []])
    with pytest.raises(InvalidInputError):
        tokenizer.code_token_id(0, 12)


def test_batch_encoding_pads_dynamically(tokenizer):
    batch = tokenizer.batch_encode_histories([[101], [101, 102, 103]], user_ids=[1, 2])
    assert batch["input_ids"].shape == (2, 1 + 3 * tokenizer.num_levels)
    assert batch["attention_mask"].sum(1).tolist() == [1 + tokenizer.num_levels, 1 + 3 * tokenizer.num_levels]
    assert batch["input_ids"][0, batch["attention_mask"][0] == 0].eq(tokenizer.pad_token_id).all()


def test_user_hash_is_stable_across_processes(tokenizer):
    users = [0, 1, 7, 123456789]
    # the function's own source, run in a fresh interpreter with another hash seed
    code = f"import hashlib\n{inspect.getsource(user_bucket)}\nprint([user_bucket(u, 2000) for u in {users}])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str([user_bucket(u, 2000) for u in users])
    buckets = {user_bucket(u, 50) for u in range(2000)}
    assert buckets == set(range(50))


def test_save_load_round_trip_and_auto_tokenizer(tokenizer, item_texts, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "semantic_ids.json").exists()
    reloaded = GenRecTokenizer.from_pretrained(tmp_path)
    auto = AutoTokenizer.from_pretrained(tmp_path)
    assert type(auto) is GenRecTokenizer
    texts = item_texts[:50] + ["<a_3><b_1> red nail polish", "ÉCLAT Crème — 50ml"]
    expected = tokenizer(texts).input_ids
    text_ids = [i for row in expected for i in row]
    assert sum(i == tokenizer.unk_token_id for i in text_ids) < 0.05 * len(text_ids)  # the Unigram vocab covers the text
    for other in (reloaded, auto):
        assert other.semantic_id_table == tokenizer.semantic_id_table
        assert other.level_offsets == tokenizer.level_offsets
        assert other.num_user_buckets == tokenizer.num_user_buckets
        assert other(texts).input_ids == expected
        assert other.encode_history([101, 250], user_id=9) == tokenizer.encode_history([101, 250], user_id=9)
        assert len(other) == len(tokenizer)
