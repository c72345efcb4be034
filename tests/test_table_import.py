"""Importing a user's own tables: every format reads the same, keys survive, ordering and k-core as documented,
bad input refused with one line naming file, line and column, output folders never replaced."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from datasets import Dataset

from hf_genrec.cli.main import main
from hf_genrec.data import RecDataset, load_rec_dataset
from hf_genrec.errors import DataFormatError, UnknownItemError

# u1 rates 4 items, u2 3, u3 one item that nobody else has; "007" must stay text
ROWS = [
    ("u1", "007", 30), ("u2", "B2", 5), ("u1", "B2", 10), ("u1", "C3", 10), ("u2", "007", 1),
    ("u3", "Z9", 7), ("u1", "D4", 40), ("u2", "C3", 9),
]
ITEMS = [("007", "Bond film", "9.99", "spy, classic"), ("B2", "Blue pen", "1.5", ""), ("C3", "Cat toy", "", "pets"),
         ("D4", "Desk", "120", "furniture"), ("E5", "Never bought", "3", "x")]


def write_csv(path, header, rows, sep=","):
    path.write_text(sep.join(header) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def tables(tmp_path):
    inter = write_csv(tmp_path / "interactions.csv", ["user_id", "item_id", "timestamp"], ROWS)
    items = tmp_path / "items.tsv"
    write_csv(items, ["item_id", "title", "price", "tags"], ITEMS, sep="\t")
    return inter, items


def test_csv_import_orders_by_time_keeps_keys_and_filters(tables):
    inter, items = tables
    dataset = RecDataset.from_interactions(inter, items, min_count=2)
    # k-core 2: u3 (1 interaction) and Z9 go; D4 has one interaction -> goes, then u1 keeps 3
    assert dataset.user_keys.keys == ["u1", "u2"]
    # u1: B2@10, C3@10 (tie: file order), 007@30; u2: 007@1, B2@5, C3@9
    keys = dataset.item_keys
    assert [keys.keys_of(s) for s in dataset.sequences.values()] == [["B2", "C3", "007"], ["007", "B2", "C3"]]
    assert dataset.sequences == {1: [1, 2, 3], 2: [3, 1, 2]}  # items numbered by first appearance
    assert dataset.text_fields == ("title", "tags")  # price is numeric: not text
    assert dataset.catalogue.text(keys.id_of("007")) == "Bond film. Tags: spy, classic"
    assert dataset.info["import"]["dropped_interactions"] == 2
    assert dataset.info["import"]["catalogue_items_without_interactions"] == 2  # D4 (filtered) and E5


def test_every_format_and_in_memory_tables_give_the_same_dataset(tables, tmp_path):
    inter, items = tables
    reference = RecDataset.from_interactions(inter, items, min_count=1)
    frame = pd.read_csv(inter, dtype=str)
    item_frame = pd.read_csv(items, sep="\t", dtype=str, keep_default_na=False).replace({"": None})
    jsonl = tmp_path / "interactions.jsonl"
    jsonl.write_text("".join(json.dumps({"user_id": u, "item_id": i, "timestamp": t}) + "\n\n" for u, i, t in ROWS))
    frame.assign(timestamp=frame["timestamp"].astype(int)).to_parquet(tmp_path / "interactions.parquet")
    item_frame.to_parquet(tmp_path / "items.parquet")
    variants = [
        RecDataset.from_interactions(tmp_path / "interactions.parquet", tmp_path / "items.parquet", min_count=1),
        RecDataset.from_interactions(jsonl, items, min_count=1),
        RecDataset.from_interactions(frame, item_frame, min_count=1),
        RecDataset.from_interactions(Dataset.from_pandas(frame), Dataset.from_pandas(item_frame), min_count=1),
        RecDataset.from_interactions({c: list(frame[c]) for c in frame}, item_frame, min_count=1),
    ]
    for dataset in variants:
        assert dataset.sequences == reference.sequences
        assert dataset.user_keys.keys == reference.user_keys.keys
        assert dataset.catalogue.texts() == reference.catalogue.texts()
        assert dataset.item_keys.keys == reference.item_keys.keys


def test_iso_dates_columns_by_name_and_file_order(tmp_path):
    inter = write_csv(tmp_path / "events.tsv", ["who", "sku", "when", "rating"],
                      [("a", "x", "2024-03-01", 5), ("a", "y", "2024-01-15T10:00:00", 4), ("a", "z", "2024-02-01", 3)], sep="\t")
    by_date = RecDataset.from_interactions(inter, user_column="who", item_column="sku", timestamp_column="when", min_count=1)
    assert by_date.item_keys.keys_of(by_date.sequences[1]) == ["y", "z", "x"]
    in_file_order = RecDataset.from_interactions(inter, user_column="who", item_column="sku", timestamp_column=None, min_count=1)
    assert in_file_order.item_keys.keys_of(in_file_order.sequences[1]) == ["x", "y", "z"]
    assert in_file_order.catalogue.texts() == ["", "", ""]  # no items table: no text
    assert in_file_order.catalogue.title(1) == "x"


def test_explicit_text_columns_and_a_key_column_named_otherwise(tmp_path):
    inter = write_csv(tmp_path / "i.csv", ["user_id", "item_id", "timestamp"], [("u", "k1", 1), ("u", "k2", 2)])
    items = tmp_path / "items.jsonl"
    items.write_text('{"sku": "k1", "keywords": ["red", "shoe"], "item_id": 5}\n{"sku": "k2", "keywords": ["blue"], "item_id": 6}\n')
    dataset = RecDataset.from_interactions(inter, items, item_key_column="sku", min_count=1)
    assert dataset.text_fields == ("keywords",)  # item_id (numbers) is not text
    assert dataset.catalogue.texts() == ["Keywords: red, shoe", "Keywords: blue"]
    with pytest.raises(DataFormatError, match=r"clash with the dataset's own item fields"):
        RecDataset.from_interactions(inter, items, item_key_column="sku", text_columns=["item_id"], min_count=1)


def test_saved_folder_loads_with_keys_and_is_never_replaced(tables, tmp_path):
    inter, items = tables
    dataset = RecDataset.from_interactions(inter, items, min_count=2, name="shop")
    dataset.save(tmp_path / "data" / "shop")
    loaded = load_rec_dataset("shop", tmp_path / "data")
    assert loaded.sequences == dataset.sequences
    assert loaded.user_keys.keys == ["u1", "u2"] and loaded.item_keys.keys == dataset.item_keys.keys
    assert loaded.catalogue.texts() == dataset.catalogue.texts()
    assert loaded.stats() == {**dataset.stats(), "dataset": "shop"}
    before = (tmp_path / "data" / "shop" / "sequences.txt").read_bytes()
    with pytest.raises(DataFormatError, match=r"shop: already exists: choose a new output folder"):
        dataset.save(tmp_path / "data" / "shop")
    assert (tmp_path / "data" / "shop" / "sequences.txt").read_bytes() == before
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["shop"]  # no staging folder left behind
    with pytest.raises(UnknownItemError, match=r"item key 'nope' is not among the 3 item keys"):
        loaded.item_keys.id_of("nope")


def test_cli_import_then_stats(tables, tmp_path, capsys):
    inter, items = tables
    out = tmp_path / "data" / "shop"
    assert main(["data", "import", "--interactions", str(inter), "--items", str(items), "--output", str(out), "--min-count", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["users"], summary["items"], summary["interactions"]) == (2, 3, 6)
    assert main(["data", "stats", "--data-dir", str(tmp_path / "data"), "--dataset", "shop"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (stats["users"], stats["items"], stats["interactions"]) == (2, 3, 6)
    assert main(["data", "import", "--interactions", str(inter), "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


BAD_INTERACTIONS = [
    ("missing_column", "user_id,item\nu,i\n", r"i\.csv, line 1: lacks columns \['item_id', 'timestamp'\]"),
    ("empty_file", "", r"i\.csv: file is empty"),
    ("header_only", "user_id,item_id,timestamp\n", r"i\.csv: no data rows after the header"),
    ("bad_timestamp", "user_id,item_id,timestamp\nu,i,1\nu,j,yesterday\n",
     r"i\.csv, line 3, field 'timestamp': expected a number or an ISO 8601 date, got 'yesterday'"),
    ("nan_timestamp", "user_id,item_id,timestamp\nu,i,nan\n", r"line 2, field 'timestamp': expected a finite number"),
    ("empty_key", "user_id,item_id,timestamp\nu,i,1\n,j,2\n", r"i\.csv, line 3, field 'user_id': empty value"),
    ("field_count", "user_id,item_id,timestamp\nu,i,1,9\n", r"i\.csv, line 2: expected 3 fields, got 4"),
    ("repeated_header", "user_id,user_id,timestamp\nu,i,1\n", r"line 1: header repeats columns \['user_id'\]"),
    ("too_sparse", "user_id,item_id,timestamp\nu,i,1\n", r"i\.csv: no interactions left: no user keeps 5 interactions"),
]


@pytest.mark.parametrize("case,text,message", BAD_INTERACTIONS, ids=[c[0] for c in BAD_INTERACTIONS])
def test_bad_interactions_are_refused_with_file_line_and_column(tmp_path, capsys, case, text, message):
    path = tmp_path / "i.csv"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        RecDataset.from_interactions(path)
    assert main(["data", "import", "--interactions", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-genrec: error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_items_and_other_inputs(tmp_path):
    inter = write_csv(tmp_path / "i.csv", ["user_id", "item_id", "timestamp"], [("u", "a", 1), ("u", "b", 2)])
    dup = write_csv(tmp_path / "items.csv", ["item_id", "title"], [("a", "A"), ("b", "B"), ("a", "again")])
    with pytest.raises(DataFormatError, match=r"items\.csv, line 4, field 'item_id': item 'a' already appears on line 2"):
        RecDataset.from_interactions(inter, dup, min_count=1)
    with pytest.raises(DataFormatError, match=r"items\.csv, line 1: lacks columns \['blurb'\]"):
        RecDataset.from_interactions(inter, dup, text_columns=["blurb"], min_count=1)
    with pytest.raises(DataFormatError, match=r"unknown table format '\.xlsx': use \.csv, \.tsv, \.jsonl or \.parquet"):
        RecDataset.from_interactions(tmp_path / "i.xlsx")
    with pytest.raises(DataFormatError, match=r"nope\.csv: file not found"):
        RecDataset.from_interactions(tmp_path / "nope.csv")
    bad_json = tmp_path / "i.jsonl"
    bad_json.write_text('{"user_id": "u", "item_id": "a", "timestamp": 1}\n[1, 2]\n')
    with pytest.raises(DataFormatError, match=r"i\.jsonl, line 2: expected a JSON object"):
        RecDataset.from_interactions(bad_json)
    with pytest.raises(DataFormatError, match=r"row 1, field 'item_id': expected a key \(text or an integer\), got 2\.5"):
        RecDataset.from_interactions({"user_id": ["u", "u"], "item_id": ["a", 2.5], "timestamp": [1, 2]}, min_count=1)
    with pytest.raises(DataFormatError, match=r"min_count must be a positive integer, got 0"):
        RecDataset.from_interactions(inter, min_count=0)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataFormatError, match=r"broken\.parquet: not a readable Parquet file"):
        RecDataset.from_interactions(tmp_path / "broken.parquet")


def test_item_keys_of_a_folder_are_checked(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "sequences.txt").write_text("1 1 2 1\n")
    (folder / "items.jsonl").write_text('{"item_id": 1, "item_key": "a"}\n{"item_id": 2, "item_key": 7}\n')
    with pytest.raises(DataFormatError, match=r"items\.jsonl, field 'item_key': item 2: expected a non-empty string, got 7"):
        load_rec_dataset("d", tmp_path)
    (folder / "items.jsonl").write_text('{"item_id": 1, "item_key": "a"}\n{"item_id": 2, "item_key": "a"}\n')
    with pytest.raises(DataFormatError, match=r"field 'item_key': item key 'a' names items 1 and 2"):
        load_rec_dataset("d", tmp_path)
    (folder / "items.jsonl").write_text('{"item_id": 1, "item_key": "a"}\n{"item_id": 2, "item_key": "b"}\n')
    (folder / "users.jsonl").write_text('{"user_id": 9, "user_key": "x"}\n')
    with pytest.raises(DataFormatError, match=r"users\.jsonl: user ids \[1, 9\] are in only one of users\.jsonl and the interactions"):
        load_rec_dataset("d", tmp_path)
