"""Building a dataset from raw Amazon 2014 files (written here, offline) in the format the loader reads."""

from __future__ import annotations

import gzip
import json

import pytest

from hf_genrec.cli.main import main
from hf_genrec.data import load_rec_dataset
from hf_genrec.data.raw_amazon import build_amazon_dataset
from hf_genrec.errors import DataFormatError


def write_raw(tmp_path):
    reviews = []
    # five users x five items, each user reviews every item at shuffled times; one user with 2 reviews only
    for u in range(5):
        for i in range(5):
            reviews.append({"reviewerID": f"U{u}", "asin": f"A{(i + u) % 5}", "unixReviewTime": 100 * i + u, "overall": 5.0})
    reviews += [{"reviewerID": "SPARSE", "asin": "A0", "unixReviewTime": 1}, {"reviewerID": "SPARSE", "asin": "A9", "unixReviewTime": 2}]
    reviews_path = tmp_path / "reviews_Toy_5.json.gz"
    with gzip.open(reviews_path, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in reviews)
    meta_path = tmp_path / "meta_Toy.json.gz"
    with gzip.open(meta_path, "wt") as handle:
        for i in range(5):  # the 2014 metadata are Python literals, not JSON
            handle.write(repr({"asin": f"A{i}", "title": f"Thing {i}", "brand": "Acme" if i else None, "categories": [["Toy", "Sub"]]}) + "\n")
        handle.write(repr({"asin": "A9", "title": "Rare"}) + "\n")
    return reviews_path, meta_path


def test_build_from_raw_files_then_load(tmp_path):
    reviews, meta = write_raw(tmp_path)
    summary = build_amazon_dataset("Toy", tmp_path / "data" / "amazon-toy", reviews=reviews, meta=meta)
    assert summary["users"] == 5 and summary["items"] == 5 and summary["interactions"] == 25  # SPARSE user and A9 dropped
    dataset = load_rec_dataset("amazon-toy", tmp_path / "data")
    first = dataset.sequences[1]
    # user U0 reviewed A0..A4 at increasing times -> ids in order of first appearance
    assert first == [1, 2, 3, 4, 5]
    assert dataset.catalogue.text(1) == "Thing 0. Categories: Toy, Sub"
    assert dataset.catalogue.item(2)["brand"] == "Acme"
    assert len(dataset.splits()["test"]) == 5


def test_cli_build_amazon(tmp_path, capsys):
    reviews, meta = write_raw(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "build-amazon", "--category", "Toy", "--reviews", str(reviews), "--meta", str(meta), "--output", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["users"] == 5


def test_malformed_raw_line(tmp_path):
    bad = tmp_path / "reviews.json"
    bad.write_text('{"reviewerID": "U", "asin": "A", "unixReviewTime": 1}\n{"reviewerID": "U", "asin": "B"}\n')
    meta = tmp_path / "meta.json"
    meta.write_text("{'asin': 'A'}\n")
    with pytest.raises(DataFormatError, match="reviews.json, line 2, field 'unixReviewTime': missing field"):
        build_amazon_dataset("Toy", tmp_path / "x", reviews=bad, meta=meta)
    bad.write_text("__import__('os').system('echo hacked')\n")
    with pytest.raises(DataFormatError, match="line 1: neither JSON nor a Python literal"):
        build_amazon_dataset("Toy", tmp_path / "x", reviews=bad, meta=meta)
