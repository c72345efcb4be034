"""Data layer: real counts, the leave-one-out and ColaRec protocols, and precise errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_genrec.data import ItemTextTemplate, load_rec_dataset
from hf_genrec.errors import DataFormatError, UnknownDatasetError


def write_beauty_like(root: Path, sequences: str, items: list[dict] | str) -> Path:
    folder = root / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sequences.txt").write_text(sequences)
    text = items if isinstance(items, str) else "".join(json.dumps(i) + "\n" for i in items)
    (folder / "items.jsonl").write_text(text)
    return root


ITEMS = [{"item_id": i, "title": f"Item {i}", "brand": None, "categories": [["A", "B"], ["B", "C"]]} for i in range(1, 8)]


def test_beauty_counts_match_published_5core(data_dir):
    stats = load_rec_dataset("amazon-beauty", data_dir).stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (22363, 12101, 198502)
    assert stats["mean_history"] == pytest.approx(198502 / 22363)


def test_phones_counts(data_dir):
    stats = load_rec_dataset("amazon-phones", data_dir).stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (27879, 10429, 194439)


def test_leave_one_out_rows(tmp_path):
    root = write_beauty_like(tmp_path, "1 1 2 3 4 5\n2 6 7 1\n", ITEMS)
    splits = load_rec_dataset("toy", root).splits(max_history=2)
    train = splits["train"].to_list()
    # user 1: items[:-2] = 1 2 3 -> prefixes [1]->2, [1 2]->3 ; user 2: items[:-2] = 6 -> no training row
    assert [(r["user_id"], r["history"], r["targets"]) for r in train] == [(1, [1], [2]), (1, [1, 2], [3])]
    valid = {r["user_id"]: (r["history"], r["targets"]) for r in splits["validation"]}
    test = {r["user_id"]: (r["history"], r["targets"]) for r in splits["test"]}
    assert valid[1] == ([2, 3], [4]) and test[1] == ([3, 4], [5])  # cut to the last 2 items
    assert valid[2] == ([6], [7]) and test[2] == ([6, 7], [1])


def test_no_target_leaks_into_its_history(data_dir):
    splits = load_rec_dataset("amazon-beauty", data_dir).splits()
    sequences = load_rec_dataset("amazon-beauty", data_dir).sequences
    for row in splits["test"].select(range(2000)):
        items = sequences[row["user_id"]]
        assert row["targets"] == [items[-1]] and row["history"] == items[:-1][-20:]
        assert len(row["history"]) <= 20


def test_colarec_protocol(data_dir):
    dataset = load_rec_dataset("amazon-phones", data_dir)
    splits = dataset.splits()
    train_items = dataset.train_sequences()
    for row in splits["train"].select(range(500)):
        assert row["targets"][0] not in row["history"] or train_items[row["user_id"]].count(row["targets"][0]) > 1
    for row in splits["test"].select(range(500)):
        assert set(row["exclude"]) == set(train_items[row["user_id"]])
        assert row["targets"]


def test_item_text_template(tmp_path):
    root = write_beauty_like(tmp_path, "1 1 2 3\n", ITEMS)
    catalogue = load_rec_dataset("toy", root).catalogue
    assert catalogue.text(1) == "Item 1. Categories: A, B, C"  # null brand left out, categories de-duplicated
    custom = load_rec_dataset("toy", root, text_fields=("categories", "title")).catalogue
    assert custom.text(2) == "Categories: A, B, C. Item 2"
    assert ItemTextTemplate.from_fields(["title"], " | ").render({"title": "x"}) == "x"


@pytest.mark.parametrize(
    "sequences, items, message",
    [
        ("1 1 2 3\n2 1 x 3\n", ITEMS, "line 2, field 'item_id': expected an integer"),
        ("1 1 2 99\n", ITEMS, "line 1, field 'item_id': item 99 is not in the item catalogue"),
        ("1\n", ITEMS, "line 1: a line needs a user id"),
        ("1 1 2 3\n1 2 3 4\n", ITEMS, "line 2, field 'user_id': user 1 appears twice"),
        ("", ITEMS, "sequences.txt: file is empty"),
        ("1 1 2 3\n", '{"item_id": 1}\n{"item_id": "2"}\n', "items.jsonl, line 2, field 'item_id': expected int"),
        ("1 1 2 3\n", '{"item_id": 1}\n{not json\n', "items.jsonl, line 2: invalid JSON"),
    ],
)
def test_bad_files_name_file_line_and_field(tmp_path, sequences, items, message):
    root = write_beauty_like(tmp_path, sequences, items)
    with pytest.raises(DataFormatError, match=message.replace("(", r"\(")) as info:
        load_rec_dataset("toy", root)
    assert isinstance(info.value, ValueError)


def test_missing_file_and_unknown_dataset(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "sequences.txt").write_text("1 1 2 3\n")
    with pytest.raises(DataFormatError, match="items.jsonl: file not found"):
        load_rec_dataset("toy", tmp_path)
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'nope'.*amazon-beauty"):
        load_rec_dataset("nope", tmp_path)


def test_colarec_csv_errors(tmp_path):
    folder = tmp_path / "phones"
    folder.mkdir()
    (folder / "items.jsonl").write_text('{"item_id": 1, "content": "a"}\n{"item_id": 2, "content": "b"}\n')
    (folder / "train.csv").write_text("user_id,item_id,time\n1,1,5\n1,3,6\n")
    (folder / "valid.csv").write_text("user_id,item_id\n1,2\n")
    (folder / "test.csv").write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataFormatError, match="train.csv, line 3, field 'item_id': item 3 is not in the item catalogue"):
        load_rec_dataset("phones", tmp_path)
    (folder / "train.csv").write_text("user,item\n1,1\n")
    with pytest.raises(DataFormatError, match=r"train.csv, line 1: header lacks columns \['user_id', 'item_id', 'time'\]"):
        load_rec_dataset("phones", tmp_path)
