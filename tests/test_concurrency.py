"""Load: recommend() served to many concurrent callers returns exactly what serial calls return."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import hf_genrec
from genrec_fixtures import random_table, write_beauty_slice
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import UnknownItemError
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation, TigerProcessor

THREADS, CALLS_PER_THREAD = 8, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir):
    """A tiny TIGER briefly trained on a real Beauty slice (peaked scores, like a served model)."""
    root = tmp_path_factory.mktemp("serve")
    write_beauty_slice(data_dir, root, users=120)
    dataset = load_rec_dataset("beauty-slice", root)
    tokenizer = GenRecTokenizer.from_semantic_id_table(random_table(dataset.catalogue.item_ids), num_user_buckets=50)
    torch.manual_seed(0)
    config = TigerConfig.from_tokenizer(tokenizer, d_model=32, d_kv=8, num_heads=2, d_ff=64, num_layers=1, dropout_rate=0.1)
    model = TigerForGenerativeRecommendation(config)
    splits = dataset.splits()
    collate = TigerDataCollator(TigerProcessor(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train = splits["train"].shuffle(seed=0)
    for start in range(0, 20 * 32, 32):
        model(**collate([dict(r) for r in train.select(range(start, start + 32))])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.train()  # left in training mode on purpose: recommend() must not let dropout in
    test = splits["test"]
    requests = []
    rng = np.random.default_rng(0)
    for call in range(THREADS * CALLS_PER_THREAD):
        rows = test.select(rng.choice(len(test), int(rng.integers(1, 12)), replace=False).tolist())
        kwargs = {"k": int(rng.integers(1, 11)), "num_beams": 10}
        if call % 3 == 0:
            kwargs["user_ids"] = list(rows["user_id"])
        if call % 4 == 1:
            kwargs["exclude"] = [h[-2:] for h in rows["history"]]
        requests.append((list(rows["history"]), kwargs))
    return model, TigerProcessor(tokenizer), requests


def test_concurrent_recommend_equals_serial(served):
    model, processor, requests = served
    barrier = threading.Barrier(THREADS)

    def worker(thread: int) -> list[tuple[int, list]]:
        barrier.wait()  # all threads start together
        out = []
        for i in range(thread, len(requests), THREADS):
            histories, kwargs = requests[i]
            out.append((i, hf_genrec.recommend(model, processor, histories, **kwargs)))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        concurrent = dict(pair for chunk in pool.map(worker, range(THREADS)) for pair in chunk)
    serial = [hf_genrec.recommend(model, processor, histories, **kwargs) for histories, kwargs in requests]
    assert len(concurrent) == len(requests)
    for i, expected in enumerate(serial):
        assert concurrent[i] == expected, f"request {i} differs under concurrency"
        histories, kwargs = requests[i]
        assert len(expected) == len(histories)
        assert all(len(r) == kwargs["k"] or "exclude" in kwargs for r in expected)
    assert len(processor.__dict__["_genrec_id_trie"]) == 1  # the shared trie cache was built once
    assert not model.training


def test_concurrent_callers_with_a_bad_request_do_not_disturb_the_others(served):
    """One caller's invalid input raises in that caller only; the other callers' answers are unchanged."""
    model, processor, requests = served
    histories, kwargs = requests[0]
    expected = hf_genrec.recommend(model, processor, histories, **kwargs)

    def call(i: int):
        if i % 2:
            return hf_genrec.recommend(model, processor, [[424242]], k=3, num_beams=4)
        return hf_genrec.recommend(model, processor, histories, **kwargs)

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(call, i) for i in range(2 * THREADS)]
    for i, future in enumerate(futures):
        if i % 2:
            with pytest.raises(UnknownItemError, match="item 424242"):
                future.result()
        else:
            assert future.result() == expected
