"""Original keys end to end: the ID table carries them, training puts them in the checkpoint, and
`recommend` answers in them (issue #20's check, on a Beauty slice exported as a shop's CSV files)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import hf_genrec
from genrec_fixtures import TINY_TIGER, random_table, write_beauty_slice
from hf_genrec.cli.main import main
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import CheckpointMismatchError, DataFormatError, InvalidInputError, UnknownItemError
from hf_genrec.item_tokenizers.build import build_semantic_ids
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.semantic_ids.id_trie import build_id_trie

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the table
def reference_disambiguation(content: np.ndarray) -> list[int]:
    """The definition: items sharing content codes get 0, 1, 2, ... in catalogue order."""
    seen: Counter = Counter()
    out = []
    for row in map(tuple, content.tolist()):
        out.append(seen[row])
        seen[row] += 1
    return out


@pytest.mark.parametrize("sizes", [[4, 4], [3, 5, 2], [256, 256, 256]])
def test_vectorised_table_matches_its_definition(sizes):
    rng = np.random.default_rng(len(sizes))
    n = 500
    content = np.stack([rng.integers(0, k, n) for k in sizes], axis=1)
    item_ids = rng.permutation(np.arange(10, 10 + 3 * n, 3))[:n].tolist()  # unsorted, gapped ids
    table = SemanticIdTable.from_content_codes(item_ids, content, sizes)
    assert table.codes[:, -1].tolist() == reference_disambiguation(content)
    for row in rng.integers(0, n, 50):
        item = item_ids[row]
        assert table.row_of(item) == row and table.item_of(table.codes[row]) == item
    assert table.codes_for(item_ids[::7]).tolist() == table.codes[::7].tolist()
    assert table.item_of([0] * (len(sizes) + 1)) in (None, *item_ids)
    assert table.item_of([sizes[0]] + [0] * len(sizes)) is None  # a code outside its codebook names nothing
    for outsider in (11, -1, 2**70, "10", 10.0, True, None):
        assert outsider not in table
        with pytest.raises(UnknownItemError):
            table.codes_for([item_ids[0], outsider])
    groups = Counter(map(tuple, content.tolist()))
    assert table.stats()["max_items_per_prefix"] == max(groups.values())
    assert table.collision_histogram() == dict(sorted(Counter(groups.values()).items()))


def test_item_keys_travel_in_the_table_file_and_old_files_still_load(tmp_path):
    table = random_table([1, 2, 3]).with_item_keys(["A", "B", "C"])
    table.save(tmp_path)
    data = json.loads((tmp_path / "semantic_ids.json").read_text())
    assert data["item_keys"] == ["A", "B", "C"]
    assert SemanticIdTable.load(tmp_path).item_keys == ["A", "B", "C"]
    del data["item_keys"]
    (tmp_path / "semantic_ids.json").write_text(json.dumps(data))
    assert SemanticIdTable.load(tmp_path).item_keys is None
    for bad in (["A", "B"], ["A", 2, "C"], ["A", "", "C"]):
        (tmp_path / "semantic_ids.json").write_text(json.dumps({**data, "item_keys": bad}))
        with pytest.raises(DataFormatError, match=r"semantic_ids\.json, field 'item_keys': expected one non-empty string per item id"):
            SemanticIdTable.load(tmp_path)
    (tmp_path / "semantic_ids.json").write_text(json.dumps({**data, "item_keys": ["A", "B", "A"]}))
    with pytest.raises(CheckpointMismatchError, match=r"semantic_ids\.json: the semantic-ID table lists an item key twice"):
        SemanticIdTable.load(tmp_path)


def test_build_semantic_ids_saves_the_item_keys(tmp_path):
    embeddings = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    build = build_semantic_ids(
        method="rqkmeans", output_dir=tmp_path, item_ids=list(range(1, 41)), item_keys=[f"sku-{i}" for i in range(1, 41)],
        embeddings=embeddings, num_levels=2, codebook_size=4, kmeans_iters=5,
    )
    assert build.table.item_keys == [f"sku-{i}" for i in build.table.item_ids]
    assert SemanticIdTable.load(tmp_path).item_keys == build.table.item_keys


def test_kmeans_on_more_points_than_the_sample_fits_a_sample_and_assigns_all():
    from hf_genrec.item_tokenizers.kmeans import kmeans, nearest_centroid

    x = torch.randn(3000, 4, generator=torch.Generator().manual_seed(0))
    centroids, assign = kmeans(x, 8, 10, torch.Generator().manual_seed(1), max_points=500)
    assert centroids.shape == (8, 4) and assign.shape == (3000,)
    assert torch.equal(assign, nearest_centroid(x, centroids))
    again, _ = kmeans(x, 8, 10, torch.Generator().manual_seed(1), max_points=500)
    assert torch.equal(centroids, again)  # seeded sample: deterministic
    full, _ = kmeans(x, 8, 10, torch.Generator().manual_seed(1), max_points=3000)  # no sampling at or under the cap
    plain, _ = kmeans(x, 8, 10, torch.Generator().manual_seed(1))
    assert torch.equal(full, plain)


@pytest.mark.parametrize("clustered", [False, True])
def test_trie_levels_answer_as_the_table_says(clustered):
    """Dense and counted levels alike: exactly the table's IDs are valid, each leads to its own row."""
    from hf_genrec.semantic_ids.id_trie import CountedLevel

    rng = np.random.default_rng(0)
    n = 6000
    content = rng.integers(0, 64, (n, 3))
    if clustered:  # one content prefix holds 500 items: a wide disambiguation level, stored counted
        content[rng.permutation(n)[:500]] = 7
    table = SemanticIdTable.from_content_codes(list(range(1, n + 1)), content, 64)
    trie = build_id_trie(table)
    assert isinstance(trie.next_state[-1], CountedLevel) == clustered
    assert torch.equal(trie.state_of(torch.as_tensor(table.codes)), torch.arange(n))
    prefixes = torch.as_tensor(table.codes[:, :3])
    states = trie.state_of(prefixes)
    allowed = trie.allowed(3, states)
    expected = torch.zeros_like(allowed)
    expected[torch.arange(n), torch.as_tensor(table.codes[:, 3])] = True
    groups = {}
    for row, state in enumerate(states.tolist()):
        groups.setdefault(state, torch.zeros(table.codebook_sizes[3], dtype=torch.bool))[table.codes[row, 3]] = True
    assert all(torch.equal(allowed[row], groups[state]) for row, state in enumerate(states.tolist()))
    beyond = torch.full((n,), table.codebook_sizes[3] - 1)
    last = trie.step(3, states, beyond)
    assert all((r == -1) == (not groups[s][-1]) for r, s in zip(last.tolist(), states.tolist()))
    assert torch.equal(trie.step(3, torch.full((3,), -1), torch.zeros(3, dtype=torch.long)), torch.full((3,), -1))
    dense = trie.dense_level(3)  # the same transitions as one [prefixes, K] table, counted or not
    size = table.codebook_sizes[3]
    every_state = torch.arange(dense.shape[0]).repeat_interleave(size)
    assert dense.dtype == torch.int32 and dense.shape[1] == size
    assert torch.equal(dense.reshape(-1).long(), trie.step(3, every_state, torch.arange(size).repeat(dense.shape[0])))
    assert torch.equal(trie.step(3, states[:3], torch.tensor([-1, 10**6, 0])), torch.tensor([-1, -1, int(trie.step(3, states[2:3], torch.tensor([0]))[0])]))


# ------------------------------------------------------------------ the check, on a slice
@pytest.fixture(scope="module")
def shop(tmp_path_factory, data_dir):
    """Beauty's first 150 users exported as interactions.csv / items.csv with ASINs, imported, trained briefly."""
    root = tmp_path_factory.mktemp("shop")
    export = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "export_beauty_tables.py"), "--output", str(root / "tables"),
         "--users", "150", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120,
    )
    assert export.returncode == 0, export.stderr
    assert main(["data", "import", "--interactions", str(root / "tables" / "interactions.csv"),
                 "--items", str(root / "tables" / "items.csv"), "--output", str(root / "data" / "shop"), "--min-count", "1"]) == 0
    write_beauty_slice(data_dir, root / "data", users=150)
    dataset = load_rec_dataset("shop", root / "data")
    random_table(dataset.catalogue.item_ids).save(root / "ids")  # no keys: training attaches the dataset's
    recipe = {**TINY_TIGER, "dataset": "shop", "data_dir": str(root / "data"), "semantic_ids": str(root / "ids"),
              "output_dir": str(root / "out"), "max_steps": 4, "save_strategy": "no"}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(root / "recipe.yaml")]) == 0
    return root, dataset


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_imported_slice_equals_the_benchmark_slice(shop, capsys):
    root, dataset = shop
    original = load_rec_dataset("beauty-slice", root / "data")
    assert dataset.sequences == original.sequences  # positions as timestamps, items numbered by first appearance
    assert dataset.catalogue.texts() == original.catalogue.texts()
    assert all(dataset.item_keys.key_of(item["item_id"]) == item["asin"] for item in original.catalogue.items)
    assert dataset.user_keys.key_of(1) == "user-00001"
    for name in ("shop", "beauty-slice"):
        assert main(["baseline", "popularity", "--data-dir", str(root / "data"), "--dataset", name]) == 0
    shop_figures, slice_figures = last_json_pair(capsys)
    for key in ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "users"):
        assert shop_figures[key] == slice_figures[key]


def last_json_pair(capsys) -> tuple[dict, dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines() if line.startswith("{")]
    return lines[-2], lines[-1]


def test_checkpoint_carries_the_keys_and_recommends_in_them(shop, capsys):
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor

    root, dataset = shop
    out = root / "out"
    processor = AutoProcessor.from_pretrained(out)
    keys = dataset.item_keys
    assert processor.item_keys == keys.keys_of(processor.item_ids)
    assert json.loads((out / "semantic_ids.json").read_text())["item_keys"] == processor.item_keys
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    histories = [row["history"] for row in dataset.splits()["test"].select(range(6))]
    by_id = hf_genrec.recommend(model, processor, histories, k=5, num_beams=10)
    by_key = hf_genrec.recommend_by_key(model, processor, [keys.keys_of(h) for h in histories], k=5, num_beams=10)
    assert by_key == [[(keys.key_of(i), s) for i, s in row] for row in by_id]
    assert all(len(key) == 10 and key in keys for row in by_key for key, _ in row)  # ASINs

    asins = keys.keys_of(histories[0])
    assert main(["recommend", "--model", str(out), "--history", *asins, "--top-k", "5", "--num-beams", "10"]) == 0
    answer = last_json(capsys)
    assert answer["history"] == asins
    assert [r["item_key"] for r in answer["recommendations"]] == [k for k, _ in by_key[0]]
    assert all(r["title"] == dataset.catalogue.title(keys.id_of(r["item_key"])) for r in answer["recommendations"])
    ids = [str(i) for i in histories[0]]
    assert main(["recommend", "--model", str(out), "--history", *ids, "--ids", "--top-k", "5", "--num-beams", "10"]) == 0
    assert [r["item_id"] for r in last_json(capsys)["recommendations"]] == [i for i, _ in by_id[0]]
    assert main(["recommend", "--model", str(out), "--history", *asins, "--user-key", "user-00001", "--top-k", "5",
                 "--num-beams", "10"]) == 0
    assert len(last_json(capsys)["recommendations"]) == 5


def test_unknown_keys_and_keyless_models_are_one_line_errors(shop, capsys, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor

    root, dataset = shop
    out = root / "out"
    assert main(["recommend", "--model", str(out), "--history", "B004756YJA", "NOT-AN-ASIN", "--top-k", "5", "--num-beams", "10"]) == 2
    err = capsys.readouterr().err
    n = len(dataset.catalogue)
    assert err.strip().splitlines()[-1] == f"hf-genrec: error: history 0: item key 'NOT-AN-ASIN' is not among the {n} item keys"
    assert main(["recommend", "--model", str(out), "--history", "B004756YJA", "--user-key", "nobody", "--top-k", "5",
                 "--num-beams", "10"]) == 2
    assert "user key 'nobody' is not among the 150 user keys" in capsys.readouterr().err
    model, processor = AutoModelForSeq2SeqLM.from_pretrained(out), AutoProcessor.from_pretrained(out)
    processor.tokenizer._semantic_id_table = processor.semantic_id_table.with_item_keys(None)
    with pytest.raises(InvalidInputError, match=r"this model carries no item keys"):
        hf_genrec.recommend_by_key(model, processor, [["B004756YJA"]])
    with pytest.raises(UnknownItemError, match=r"exclude list 0: item key 'zzz'"):
        hf_genrec.recommend_by_key(model, AutoProcessor.from_pretrained(out), [[dataset.item_keys.key_of(1)]], exclude=[["zzz"]])


def test_a_table_whose_keys_disagree_with_the_dataset_is_refused(shop, tmp_path):
    from hf_genrec.training.pipeline import with_dataset_item_keys

    root, dataset = shop
    table = SemanticIdTable.load(root / "ids")
    keyed = with_dataset_item_keys(table, dataset, "ids")
    assert keyed.item_keys == dataset.item_keys.keys_of(table.item_ids)
    swapped = list(keyed.item_keys)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(CheckpointMismatchError, match=r"ids: item 1 has key '.+' in the semantic-ID table but '.+' in the dataset"):
        with_dataset_item_keys(table.with_item_keys(swapped), dataset, "ids")


def test_a_sasrec_checkpoint_carries_the_keys_too(shop, capsys):
    """Families without an ID table keep the keys in processor_config.json."""
    from transformers import AutoModel, AutoProcessor

    root, dataset = shop
    recipe = {"model_family": "sasrec", "dataset": "shop", "data_dir": str(root / "data"), "max_history": 20,
              "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "output_dir": str(root / "sasrec"),
              "use_cpu": True, "max_steps": 3, "per_device_train_batch_size": 32, "save_strategy": "no",
              "report_to": "none", "disable_tqdm": True, "generation_num_beams": 10, "test_at_end": False}
    (root / "sasrec.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(root / "sasrec.yaml")]) == 0
    processor = AutoProcessor.from_pretrained(root / "sasrec")
    assert processor.item_keys == dataset.item_keys.keys_of(processor.item_ids)
    model = AutoModel.from_pretrained(root / "sasrec")
    history = dataset.item_keys.keys_of(dataset.sequences[1][:3])
    ranked = hf_genrec.recommend_by_key(model, processor, [history], k=5)[0]
    assert len(ranked) == 5 and all(key in dataset.item_keys for key, _ in ranked)
    assert main(["recommend", "--model", str(root / "sasrec"), "--history", *history, "--top-k", "5"]) == 0
    assert [r["item_key"] for r in last_json(capsys)["recommendations"]] == [k for k, _ in ranked]
