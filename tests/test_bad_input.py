"""Bad input, case by case: each raises the package's own error type, naming what is wrong and where.

The cases and their messages are listed in docs/ERRORS.md; keep both in step.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import hf_genrec
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import (
    CheckpointMismatchError,
    ConfigError,
    DataFormatError,
    HfGenRecError,
    InvalidInputError,
    UnknownDatasetError,
    UnknownItemError,
)
from hf_genrec.evaluation import ranking_metrics
from hf_genrec.semantic_ids.id_trie import build_id_trie
from hf_genrec.generation import fast_beam_search
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.item_tokenizers.rqkmeans import RQKMeansConfig, RQKMeansTokenizer, rqkmeans_semantic_ids
from hf_genrec.item_tokenizers.rqvae import RQVAETokenizerConfig, RQVAETokenizerModel
from hf_genrec.models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.inference.saved_models import load_saved_model
from hf_genrec.training.recipe_loading import parse_recipe


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------------
# 1. Data files
# ---------------------------------------------------------------------------------------------------
ITEMS = [{"item_id": i, "title": f"item {i}", "content": f"item {i}"} for i in range(1, 9)]
GOOD_LOO = {
    "items.jsonl": "".join(json.dumps(item) + "\n" for item in ITEMS),
    "sequences.txt": "1 1 2 3 4\n2 2 3 5 6 7\n3 8 1 2\n",
}
GOOD_COLAREC = {
    "items.jsonl": GOOD_LOO["items.jsonl"],
    "train.csv": "user_id,item_id,time\n1,1,10\n1,2,11\n2,3,12\n2,4,13\n",
    "valid.csv": "user_id,item_id\n1,5\n2,6\n",
    "test.csv": "user_id,item_id\n1,7\n2,8\n",
}


def _write_dataset(root: Path, files: dict[str, str | bytes | None], name: str = "toy") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, content in files.items():
        if content is None:
            continue
        path = folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def test_good_toy_datasets_load(tmp_path):
    """The baseline the bad cases below are edits of."""
    loo = load_rec_dataset("toy", _write_dataset(tmp_path / "a", GOOD_LOO))
    assert loo.protocol == "leave-one-out" and len(loo.catalogue) == 8 and len(loo.sequences) == 3
    col = load_rec_dataset("toy", _write_dataset(tmp_path / "b", GOOD_COLAREC))
    assert col.protocol == "colarec" and len(col.test) == 2


DATA_CASES = {
    # id: (base, {file: new content (None: absent)}, message pattern)
    "sequences-empty": (GOOD_LOO, {"sequences.txt": ""}, r"sequences\.txt: file is empty"),
    "sequences-blank-lines-only": (GOOD_LOO, {"sequences.txt": "\n  \n"}, r"sequences\.txt: no sequences in file"),
    "sequences-not-an-int": (
        GOOD_LOO, {"sequences.txt": "1 1 2 3\n2 2 x 4\n"},
        r"sequences\.txt, line 2, field 'item_id': expected an integer, got 'x'",
    ),
    "sequences-bad-user": (GOOD_LOO, {"sequences.txt": "u1 1 2 3\n"}, r"line 1, field 'user_id': expected an integer, got 'u1'"),
    "sequences-user-without-items": (
        GOOD_LOO, {"sequences.txt": "1 1 2 3\n7\n"}, r"sequences\.txt, line 2: a line needs a user id and at least one item id",
    ),
    "sequences-negative-id": (GOOD_LOO, {"sequences.txt": "1 1 -2 3\n"}, r"line 1, field 'item_id': ids must be non-negative, got -2"),
    "sequences-duplicate-user": (
        GOOD_LOO, {"sequences.txt": "1 1 2 3\n1 4 5 6\n"}, r"line 2, field 'user_id': user 1 appears twice",
    ),
    "sequences-unknown-item": (
        GOOD_LOO, {"sequences.txt": "1 1 2 3\n2 4 99 5\n"},
        r"sequences\.txt, line 2, field 'item_id': item 99 is not in the item catalogue \(items\.jsonl\)",
    ),
    "sequences-not-utf8": (
        GOOD_LOO, {"sequences.txt": b"1 1 2 3\n2 4 5 \xff\xfe\n"}, r"sequences\.txt, line 2: not UTF-8 text",
    ),
    "sequences-is-a-directory": (GOOD_LOO, {"sequences.txt": None, "sequences.txt/x": "1 1 2 3\n"}, r"sequences\.txt: not a regular file"),
    "items-missing": (GOOD_LOO, {"items.jsonl": None}, r"items\.jsonl: file not found"),
    "items-empty": (GOOD_LOO, {"items.jsonl": ""}, r"items\.jsonl: file is empty"),
    "items-blank-lines-only": (GOOD_LOO, {"items.jsonl": "\n\n"}, r"items\.jsonl: no JSON objects in file"),
    "items-invalid-json": (
        GOOD_LOO, {"items.jsonl": '{"item_id": 1}\n{"item_id": 2,\n'}, r"items\.jsonl, line 2: invalid JSON",
    ),
    "items-not-an-object": (GOOD_LOO, {"items.jsonl": '{"item_id": 1}\n[2, 3]\n'}, r"items\.jsonl, line 2: expected a JSON object"),
    "items-missing-id": (
        GOOD_LOO, {"items.jsonl": '{"item_id": 1}\n{"title": "x"}\n'}, r"items\.jsonl, line 2, field 'item_id': missing field",
    ),
    "items-id-wrong-type": (
        GOOD_LOO, {"items.jsonl": '{"item_id": "1"}\n'}, r"items\.jsonl, line 1, field 'item_id': expected int, got str",
    ),
    "items-id-bool": (GOOD_LOO, {"items.jsonl": '{"item_id": true}\n'}, r"field 'item_id': expected int, got bool"),
    "items-duplicate-id": (
        GOOD_LOO, {"items.jsonl": '{"item_id": 1}\n{"item_id": 2}\n\n{"item_id": 1}\n'},
        r"items\.jsonl, line 4, field 'item_id': item_id 1 already appears on line 1",
    ),
    "csv-missing-column": (
        GOOD_COLAREC, {"train.csv": "user_id,item_id\n1,1\n"}, r"train\.csv, line 1: header lacks columns \['time'\]",
    ),
    "csv-wrong-field-count": (
        GOOD_COLAREC, {"train.csv": "user_id,item_id,time\n1,1,10\n1,2\n"}, r"train\.csv, line 3: expected 3 fields, got 2",
    ),
    "csv-not-an-int": (
        GOOD_COLAREC, {"valid.csv": "user_id,item_id\n1,five\n"}, r"valid\.csv, line 2, field 'item_id': expected an integer, got 'five'",
    ),
    "csv-unknown-item": (
        GOOD_COLAREC, {"test.csv": "user_id,item_id\n1,7\n2,1234\n"},
        r"test\.csv, line 3, field 'item_id': item 1234 is not in the item catalogue",
    ),
    "csv-header-only": (GOOD_COLAREC, {"test.csv": "user_id,item_id\n"}, r"test\.csv: no data rows after the header"),
    "csv-empty": (GOOD_COLAREC, {"valid.csv": ""}, r"valid\.csv: file is empty"),
    "csv-missing": (GOOD_COLAREC, {"test.csv": None}, r"test\.csv: file not found"),
    "sequences-underscore-id": (GOOD_LOO, {"sequences.txt": "1 1_0 2 3\n"}, r"line 1, field 'item_id': expected an integer, got '1_0'"),
    "sequences-non-ascii-digits": (GOOD_LOO, {"sequences.txt": "1 1 \uff12 3\n"}, r"line 1, field 'item_id': expected an integer, got '\uff12'"),
    "sequences-id-beyond-int64": (
        GOOD_LOO, {"sequences.txt": "1 1 2 3\n2 99999999999999999999 3 4\n"},
        r"sequences\.txt, line 2, field 'item_id': ids must be at most 9223372036854775807 \(int64\), got 99999999999999999999",
    ),
    "items-negative-id": (
        GOOD_LOO, {"items.jsonl": '{"item_id": 1}\n{"item_id": -4}\n'}, r"items\.jsonl, line 2, field 'item_id': ids must be non-negative, got -4",
    ),
    "items-id-beyond-int64": (
        GOOD_LOO, {"items.jsonl": '{"item_id": 18446744073709551616}\n'}, r"items\.jsonl, line 1, field 'item_id': ids must be at most",
    ),
    "items-duplicate-key": (
        GOOD_LOO, {"items.jsonl": '{"item_id": 1}\n{"item_id": 2, "title": "a", "item_id": 3}\n'},
        r"items\.jsonl, line 2: duplicate key 'item_id' in a JSON object",
    ),
    "csv-underscore-id": (GOOD_COLAREC, {"valid.csv": "user_id,item_id\n1,1_0\n"}, r"valid\.csv, line 2, field 'item_id': expected an integer, got '1_0'"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_malformed_data_files(tmp_path, case):
    base, edits, pattern = DATA_CASES[case]
    files = {**base, **edits}
    _write_dataset(tmp_path, files)
    with pytest.raises(DataFormatError, match=pattern) as info:
        load_rec_dataset("toy", tmp_path)
    assert str(tmp_path) in str(info.value)  # the message carries the full path of the file


def test_unreadable_data_file(tmp_path, monkeypatch):
    """A file that exists but cannot be read (permissions, I/O error) is named, not a traceback."""
    _write_dataset(tmp_path, GOOD_LOO)
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self.name == "sequences.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(DataFormatError, match=r"sequences\.txt: cannot read the file \(Permission denied\)"):
        load_rec_dataset("toy", tmp_path)


@pytest.mark.parametrize("files, split, why", [
    ({**GOOD_LOO, "sequences.txt": "1 1 2\n2 3\n3 4 5\n"}, "train",
     "every user has fewer than the 3 items leave-one-out needs"),
    ({**GOOD_COLAREC, "valid.csv": "user_id,item_id\n7,5\n"}, "validation", "no user of it has training items"),
])
def test_a_dataset_without_a_user_to_score(tmp_path, files, split, why):
    dataset = load_rec_dataset("toy", _write_dataset(tmp_path, files))
    with pytest.raises(DataFormatError, match=rf"dataset 'toy' has no user to score in its {split} split: {why}"):
        dataset.splits()


def test_what_a_protocol_cannot_score_is_counted_and_warned(tmp_path, caplog):
    """Leave-one-out leaves out users with fewer than 3 items; the ColaRec protocol cannot score a held-out
    user without training items, nor hit a target that is also a training item: counted, not silent."""
    loo = load_rec_dataset("toy", _write_dataset(tmp_path / "a", {**GOOD_LOO, "sequences.txt": "1 1 2 3 4\n2 2 3 5\n3 8 1\n"}))
    assert loo.split_report()["test"] == {"users_scored": 2, "users_with_fewer_than_3_items": 1}
    files = {**GOOD_COLAREC, "valid.csv": "user_id,item_id\n1,5\n1,2\n2,6\n9,7\n"}  # item 2 is user 1's training item; user 9 has none
    colarec = load_rec_dataset("toy", _write_dataset(tmp_path / "b", files))
    with caplog.at_level("WARNING"):
        report = colarec.split_report()
    assert report["validation"] == {"users_scored": 2, "users_without_training_items": 1, "targets": 3, "targets_also_in_training_items": 1}
    assert report["test"] == {"users_scored": 2, "users_without_training_items": 0, "targets": 2, "targets_also_in_training_items": 0}
    assert "validation split: users without training items: 1, targets also in training items: 1" in caplog.text
    assert len(colarec.splits()["validation"]) == 2


def test_many_items_without_text_are_warned_about(caplog):
    from hf_genrec.item_tokenizers.build import warn_about_items_without_text

    with caplog.at_level("WARNING"):
        assert warn_about_items_without_text(["a", "", "  ", "b"] + ["c"] * 96) == 2
    assert "2 of 100 items (2.0%) have no text" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert warn_about_items_without_text(["a", ""] + ["c"] * 198) == 1  # one in 200: no warning, still counted
    assert "no text" not in caplog.text


def test_unknown_dataset_and_missing_folder(tmp_path):
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'nope': known names are \['amazon-beauty', 'amazon-phones'\]"):
        load_rec_dataset("nope", tmp_path)
    with pytest.raises(DataFormatError, match=r"amazon-beauty: dataset folder for 'amazon-beauty' not found"):
        load_rec_dataset("amazon-beauty", tmp_path)


def test_cli_reports_data_errors_with_exit_code_2(tmp_path, capsys):
    from hf_genrec.cli.main import main

    _write_dataset(tmp_path, {**GOOD_LOO, "sequences.txt": "1 1 2 3\n2 4 99 5\n"})
    assert main(["data", "stats", "--dataset", "toy", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "hf-genrec: error:" in err and "line 2" in err and "item 99 is not in the item catalogue" in err



@pytest.mark.parametrize("name, why", [("ids.png", "already exists"), ("ids.xyz", "format 'xyz' is not one matplotlib writes"),
                                       ("folder.png", "is a folder")])
def test_build_semantic_ids_never_overwrites_a_plot_file(tmp_path, capsys, name, why):
    """`--plot` names a user's file: it is checked before any work and never replaced without --overwrite-output-dir."""
    from hf_genrec.cli.main import main

    _write_dataset(tmp_path, GOOD_LOO)
    (tmp_path / "ids.png").write_bytes(b"my own picture")
    (tmp_path / "folder.png").mkdir()
    args = ["build-semantic-ids", "--dataset", "toy", "--data-dir", str(tmp_path), "--method", "rqkmeans",
            "--output", str(tmp_path / "out"), "--plot", str(tmp_path / name)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "hf-genrec: error:" in err and why in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "ids.png").read_bytes() == b"my own picture" and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------
# 2. Unknown items and empty histories (training data, tokenizer, collator, recommend())
# ---------------------------------------------------------------------------------------------------
def _table(item_ids, levels=3, size=8, seed=0) -> SemanticIdTable:
    codes = np.random.default_rng(seed).integers(0, size, (len(item_ids), levels))
    return SemanticIdTable.from_content_codes(list(item_ids), codes, size, method="random")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An (untrained) tiny TIGER saved like `hf-genrec train` saves it: model + tokenizer + semantic_ids.json."""
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    tokenizer = GenRecTokenizer.from_semantic_id_table(_table(range(100, 140)), num_user_buckets=4)
    torch.manual_seed(0)
    config = TigerConfig.from_tokenizer(tokenizer, d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=1)
    TigerForGenerativeRecommendation(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(checkpoint):
    saved = load_saved_model(checkpoint)
    return saved.model, saved.processor


def test_training_table_lacking_catalogue_items(tmp_path):
    from hf_genrec.training.pipeline import train_from_recipe

    _write_dataset(tmp_path / "data", GOOD_LOO)
    _table(range(1, 7)).save(tmp_path / "ids")  # items 7 and 8 have no ID
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "dataset": "toy", "data_dir": str(tmp_path / "data"), "semantic_ids": str(tmp_path / "ids"),
        "output_dir": str(tmp_path / "out"), "use_cpu": True,
    }))
    with pytest.raises(CheckpointMismatchError, match=r"the semantic-ID table lacks 2 catalogue items, e\.g\. \[7, 8\]"):
        train_from_recipe(parse_recipe(tmp_path / "r.yaml"))


@pytest.mark.parametrize("item", [424242, -1, None, "101", 101.0, 100.5, True])
def test_recommend_rejects_items_outside_the_table(loaded, item):
    model, processor = loaded
    with pytest.raises(UnknownItemError, match=re.escape(f"item {item!r} has no semantic ID (not in the table of 40 items)")):
        hf_genrec.recommend(model, processor, [[101, 102], [103, item]], k=3, num_beams=4)


def test_unknown_items_in_batches_and_lookups(loaded, tmp_path):
    _, processor = loaded
    tokenizer = processor.tokenizer
    collate = TigerDataCollator(processor)
    with pytest.raises(UnknownItemError, match="item 999 has no semantic ID"):
        collate([{"user_id": 1, "history": [101, 999], "targets": [102]}])
    with pytest.raises(UnknownItemError, match="item 998 has no semantic ID"):
        collate([{"user_id": 1, "history": [101], "targets": [998]}])
    with pytest.raises(UnknownItemError, match="item 5 has no semantic ID"):
        tokenizer.encode_item(5)
    with pytest.raises(UnknownItemError, match=r"do not name an item of the catalogue"):
        tokenizer.decode_item([tokenizer.eos_token_id])
    with pytest.raises(UnknownItemError, match="is not in the catalogue of 8 items"):
        load_rec_dataset("toy", _write_dataset(tmp_path, GOOD_LOO)).catalogue.text(9)


def test_empty_histories(loaded):
    model, processor = loaded
    tokenizer = processor.tokenizer
    with pytest.raises(InvalidInputError, match=r"history 1 is empty: at least one item is needed"):
        hf_genrec.recommend(model, processor, [[101], []], k=3, num_beams=4)
    with pytest.raises(InvalidInputError, match=r"empty history: at least one item is needed"):
        tokenizer.encode_history([])
    with pytest.raises(InvalidInputError, match=r"history 1 \(user 7\): empty history"):
        TigerDataCollator(processor)([{"user_id": 6, "history": [101], "targets": [102]}, {"user_id": 7, "history": [], "targets": [102]}])
    with pytest.raises(InvalidInputError, match="cannot collate an empty batch"):
        TigerDataCollator(processor)([])
    with pytest.raises(InvalidInputError, match="1 users have no target item"):
        ranking_metrics([[1, 2], [3, 4]], [[2], []], ks=[2])
    assert hf_genrec.recommend(model, processor, [], k=3, num_beams=4) == []  # no histories: nothing to do


def test_cold_start_items_get_ids_from_the_item_tokenizer():
    """Items with text but no interactions: the fitted tokenizer encodes their embeddings into valid codes."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 12, generator=g) * 5
    known = centres[torch.arange(120) % 6] + 0.2 * torch.randn(120, 12, generator=g)
    tokenizer = RQKMeansTokenizer(RQKMeansConfig(num_levels=2, codebook_size=6, num_iters=10, seed=0)).fit(known)
    table = tokenizer.build_table(list(range(120)), known)
    new = known[:5] + 1e-4 * torch.randn(5, 12, generator=g)  # cold-start items next to known ones
    codes = tokenizer.encode_codes(new)
    assert codes.shape == (5, 2) and int(codes.min()) >= 0 and int(codes.max()) < 6
    assert torch.equal(codes, torch.as_tensor(table.codes[:5, :2]))  # same content codes as their neighbours
    extended = SemanticIdTable.from_content_codes(
        list(range(125)), np.concatenate([table.codes[:, :2], codes.numpy()]), 6, method="rqkmeans"
    )
    assert len({tuple(c) for c in extended.codes.tolist()}) == 125  # the disambiguation level keeps IDs unique
    rqvae = RQVAETokenizerModel(RQVAETokenizerConfig(input_dim=12, hidden_dims=[16], latent_dim=4, num_levels=2, codebook_size=6))
    rqvae.set_input_statistics(known)
    vae_codes = rqvae.encode_codes(new)
    assert vae_codes.shape == (5, 2) and int(vae_codes.max()) < 6


# ---------------------------------------------------------------------------------------------------
# 3. NaN / inf embeddings
# ---------------------------------------------------------------------------------------------------
def _embeddings(bad: float | None = None, n: int = 40, dim: int = 16) -> torch.Tensor:
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(0))
    if bad is not None:
        x[7, 3] = bad
    return x


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_embeddings_are_rejected(bad):
    config = RQKMeansConfig(num_levels=2, codebook_size=4, num_iters=2)
    with pytest.raises(InvalidInputError, match="embeddings contain NaN or infinite values"):
        RQKMeansTokenizer(config).fit(_embeddings(bad))
    with pytest.raises(InvalidInputError, match="embeddings contain NaN or infinite values"):
        rqkmeans_semantic_ids(list(range(40)), _embeddings(bad).numpy(), config)
    fitted = RQKMeansTokenizer(config).fit(_embeddings())
    with pytest.raises(InvalidInputError, match="embeddings contain NaN or infinite values"):
        fitted.encode_codes(_embeddings(bad))
    rqvae = RQVAETokenizerModel(RQVAETokenizerConfig(input_dim=16, hidden_dims=[16], latent_dim=4, num_levels=2, codebook_size=4))
    with pytest.raises(InvalidInputError, match="embeddings contain NaN or infinite values"):
        rqvae.set_input_statistics(_embeddings(bad))
    with pytest.raises(InvalidInputError, match="embeddings contain NaN or infinite values"):
        rqvae.encode_codes(_embeddings(bad))
    with pytest.raises(InvalidInputError, match="embeddings contain NaN or infinite values"):
        rqvae(_embeddings(bad))


def test_embedding_shape_errors():
    fitted = RQKMeansTokenizer(RQKMeansConfig(num_levels=2, codebook_size=4, num_iters=2)).fit(_embeddings())
    with pytest.raises(InvalidInputError, match="embeddings have 8 dimensions, the tokenizer was fit on 16"):
        fitted.encode_codes(torch.zeros(3, 8))
    with pytest.raises(InvalidInputError, match=r"non-empty \[N, D\] matrix, got shape \(0, 16\)"):
        fitted.encode_codes(torch.zeros(0, 16))
    with pytest.raises(InvalidInputError, match="not fit yet"):
        RQKMeansTokenizer().encode_codes(_embeddings())
    rqvae = RQVAETokenizerModel(RQVAETokenizerConfig(input_dim=16, hidden_dims=[16], latent_dim=4, num_levels=2, codebook_size=4))
    with pytest.raises(InvalidInputError, match=r"shape \[N, 16\] \(config.input_dim\), got \(3, 8\)"):
        rqvae.encode_codes(torch.zeros(3, 8))


def test_item_encoder_output_with_nan_is_rejected(tmp_path):
    from hf_genrec.item_encoders import encode_item_texts

    class BrokenEncoder(torch.nn.Module):
        """Stands in for a SentenceTransformer whose weights went NaN."""

        def encode(self, texts, **kwargs):
            out = torch.ones(len(texts), 4)
            out[2, 1] = math.nan
            return out

    with pytest.raises(InvalidInputError, match=r"NaN/inf embeddings \(first at text 2: 'third'\)"):
        encode_item_texts(["first", "second", "third"], BrokenEncoder(), cache_dir=tmp_path, show_progress_bar=False)
    assert not list(tmp_path.iterdir())  # nothing cached
    with pytest.raises(InvalidInputError, match=r"texts\[1\] is int, not str"):
        encode_item_texts(["a", 3], BrokenEncoder(), use_cache=False)
    with pytest.raises(InvalidInputError, match="texts is empty"):
        encode_item_texts([], BrokenEncoder(), use_cache=False)


# ---------------------------------------------------------------------------------------------------
# 4. Checkpoints whose parts disagree
# ---------------------------------------------------------------------------------------------------
def _edited(checkpoint: Path, tmp_path: Path, ids=None, config=None) -> Path:
    folder = tmp_path / "edited"
    shutil.copytree(checkpoint, folder)
    for name, edit in (("semantic_ids.json", ids), ("config.json", config)):
        if edit is not None:
            path = folder / name
            data = json.loads(path.read_text())
            edit(data)
            path.write_text(json.dumps(data))
    return folder


def _unique_codes(n: int, sizes: list[int]) -> list[list[int]]:
    """n distinct code tuples (mixed radix), so a table with fewer levels is still a bijection."""
    out = []
    for i in range(n):
        row = []
        for size in reversed(sizes):
            row.append(i % size)
            i //= size
        out.append(row[::-1])
    return out


def _bigger_codebook(d):
    d["codebook_sizes"][0] += 4


def _fewer_levels(d):
    d["codebook_sizes"] = [8, 8]
    d["codes"] = _unique_codes(len(d["item_ids"]), [8, 8])
    d["content_levels"] = 2


def _more_levels(d):
    d["codebook_sizes"].append(2)
    for row in d["codes"]:
        row.append(0)


def _smaller_last_level(d):
    d["codebook_sizes"][0] = max(r[0] for r in d["codes"])  # one code now lies outside


def _smaller_but_valid(d):
    d["codebook_sizes"][0] = 7
    d["codes"] = [[min(r[0], 6), *r[1:]] for r in d["codes"]]
    d["codes"] = [list(r[:3]) + [0] for r in d["codes"]]
    seen: dict = {}
    for r in d["codes"]:
        r[3] = seen.setdefault(tuple(r[:3]), [0])[0]
        seen[tuple(r[:3])][0] += 1
    d["codebook_sizes"][3] = max(r[3] for r in d["codes"]) + 1


def _ragged_codes(d):
    d["codes"][5] = d["codes"][5][:-1]


def _codes_missing(d):
    del d["codes"]


def _duplicate_id(d):
    d["codes"][1] = list(d["codes"][0])


def _item_ids_not_ints(d):
    d["item_ids"][0] = "a"


ID_TABLE_CASES = {
    "codebook-larger-than-vocab": (_bigger_codebook, CheckpointMismatchError, r"tokenizer vocabulary does not hold level 0's 12 code tokens as one block"),
    "code-outside-codebook": (_smaller_last_level, CheckpointMismatchError, r"semantic_ids\.json: level 0 has codes outside \[0, \d\)"),
    "more-levels-than-vocab": (_more_levels, CheckpointMismatchError, r"tokenizer vocabulary does not hold level 4's 2 code tokens"),
    "ragged-codes": (_ragged_codes, CheckpointMismatchError, r"semantic_ids\.json: item 105 has 3 codes but codebook_sizes lists 4 levels"),
    "codes-missing": (_codes_missing, DataFormatError, r"semantic_ids\.json: semantic-ID table lacks \['codes'\]"),
    "two-items-one-id": (_duplicate_id, CheckpointMismatchError, r"semantic_ids\.json: two items share one semantic ID"),
    "item-ids-not-integers": (_item_ids_not_ints, DataFormatError, r"semantic_ids\.json, field 'item_ids': expected a list of integers"),
}


@pytest.mark.parametrize("case", sorted(ID_TABLE_CASES))
def test_checkpoint_with_a_broken_id_table(checkpoint, tmp_path, case):
    from transformers import AutoTokenizer

    edit, error, pattern = ID_TABLE_CASES[case]
    folder = _edited(checkpoint, tmp_path, ids=edit)
    with pytest.raises(error, match=pattern):
        load_saved_model(folder)
    with pytest.raises(error, match=pattern):
        AutoTokenizer.from_pretrained(folder)


MODEL_VS_TABLE_CASES = {
    # the ID table is valid and fits the vocabulary, but the model was built for other codebooks
    "table-has-fewer-levels": (dict(ids=_fewer_levels), r"model codebook sizes \[8, 8, 8, \d\] \(config\.json\) disagree with the semantic-ID table's \[8, 8\]"),
    "table-has-smaller-codebook": (dict(ids=_smaller_but_valid), r"model codebook sizes \[8, 8, 8, \d\] \(config\.json\) disagree with the semantic-ID table's \[7, 8, 8, \d\]"),
    "config-codebook-size": (dict(config=lambda c: c["codebook_sizes"].__setitem__(1, 4)), r"model codebook sizes \[8, 4, 8, \d\] \(config\.json\)"),
    "config-number-of-levels": (
        dict(config=lambda c: (c.__setitem__("codebook_sizes", c["codebook_sizes"][:3]), c.__setitem__("level_offsets", c["level_offsets"][:3]))),
        r"model codebook sizes \[8, 8, 8\] \(config\.json\) disagree with the semantic-ID table's \[8, 8, 8, \d\]",
    ),
}


@pytest.mark.parametrize("case", sorted(MODEL_VS_TABLE_CASES))
def test_checkpoint_whose_model_and_table_disagree(checkpoint, tmp_path, case):
    edits, pattern = MODEL_VS_TABLE_CASES[case]
    with pytest.raises(CheckpointMismatchError, match=pattern):
        load_saved_model(_edited(checkpoint, tmp_path, **edits))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda c: c["level_offsets"].__setitem__(1, c["level_offsets"][1] + 1), id="config-level-offsets"),
        pytest.param(lambda c: c.__setitem__("vocab_size", c["vocab_size"] - 4), id="config-vocab-size"),
    ],
)
def test_checkpoint_whose_model_layout_and_tokenizer_disagree(checkpoint, tmp_path, edit):
    """A shifted code block makes the model score the wrong tokens: it must not load silently.

    Today: level_offsets loads silently; vocab_size raises transformers' RuntimeError (size mismatch).
    """
    with pytest.raises(CheckpointMismatchError, match=r"config\.json"):
        load_saved_model(_edited(checkpoint, tmp_path, config=edit))


def test_checkpoint_files_missing_or_unreadable(checkpoint, tmp_path):
    with pytest.raises(DataFormatError, match=r"not a saved model folder \(no config\.json\)"):
        load_saved_model(tmp_path)
    folder = _edited(checkpoint, tmp_path)
    (folder / "semantic_ids.json").write_text('{"codes": [1, 2,')
    with pytest.raises(DataFormatError, match=r"edited/semantic_ids\.json, line 1: invalid JSON"):
        load_saved_model(folder)
    (folder / "semantic_ids.json").unlink()
    with pytest.raises(CheckpointMismatchError, match=r"edited: tokenizer files lack semantic_ids\.json"):
        load_saved_model(folder)
    with pytest.raises(DataFormatError, match=r"semantic-ID table not found"):
        SemanticIdTable.load(folder)


# ---------------------------------------------------------------------------------------------------
# 5. Recipes
# ---------------------------------------------------------------------------------------------------
RECIPE_CASES = {
    "unknown-key": ("output_dir: x\nlearning_rat: 0.1\n", r"r\.yaml: unknown recipe keys \['learning_rat'\]"),
    "wrong-type-str-for-int": ("output_dir: x\nd_model: big\n", r"r\.yaml: key 'd_model' expects int, got 'big'"),
    "wrong-type-float-for-int": ("output_dir: x\nnum_layers: 2.5\n", r"key 'num_layers' expects int, got 2\.5"),
    "wrong-type-bool-for-int": ("output_dir: x\nmax_steps: true\n", r"key 'max_steps' expects int, got True"),
    "wrong-type-str-for-float": ("output_dir: x\nlearning_rate: fast\n", r"key 'learning_rate' expects float or int, got 'fast'"),
    "bad-choice": ("output_dir: x\nmodel_family: gpt\n", r"unknown model family 'gpt'; known families: \['colarec', 'rpg', 'sasrec', 'tiger'\]"),
    "bad-id-method": ("output_dir: x\nsemantic_id_method: lsh\n", r"semantic_id_method must be one of rqvae, rqkmeans, opq, colarec-kmeans, got 'lsh'"),
    "bad-trainer-value": ("output_dir: x\nlr_scheduler_type: nonsense\n", r"r\.yaml: nonsense is not a valid SchedulerType"),
    "not-a-mapping": ("- a\n- b\n", r"r\.yaml: a recipe is a flat mapping of keys to values"),
    "invalid-yaml": ("a: [1,\n", r"r\.yaml: invalid YAML"),
    "empty-file": ("", r"r\.yaml: the recipe file is empty"),
    "comments-only": ("# nothing here\n", r"r\.yaml: the recipe file is empty"),
    "duplicate-key": ("output_dir: x\nlearning_rate: 0.1\nlearning_rate: 0.2\n",
                      r"r\.yaml: invalid YAML \(line 3: duplicate key 'learning_rate' \(first on line 2\)\)"),
    "null-for-a-required-value": ("output_dir: x\ndataset: null\n", r"r\.yaml: key 'dataset' must have a value, got null"),
    "zero-epochs": ("output_dir: x\nnum_train_epochs: 0\n", r"r\.yaml: num_train_epochs must be > 0 \(or max_steps >= 1\), got 0"),
    "negative-epochs": ("output_dir: x\nnum_train_epochs: -1\n", r"num_train_epochs must be > 0 \(or max_steps >= 1\), got -1"),
    "zero-max-steps": ("output_dir: x\nmax_steps: 0\n", r"max_steps must be -1 \(train for num_train_epochs\) or >= 1, got 0"),
    "zero-learning-rate": ("output_dir: x\nlearning_rate: 0\n", r"r\.yaml: learning_rate must be > 0, got 0"),
    "negative-learning-rate": ("output_dir: x\nlearning_rate: -0.001\n", r"learning_rate must be > 0, got -0\.001"),
    "nan-learning-rate": ("output_dir: x\nlearning_rate: .nan\n", r"learning_rate must be a finite number, got nan"),
    "inf-weight-decay": ("output_dir: x\nweight_decay: .inf\n", r"weight_decay must be a finite number, got inf"),
    "zero-batch-size": ("output_dir: x\nper_device_train_batch_size: 0\n", r"per_device_train_batch_size must be >= 1, got 0"),
    "negative-eval-batch-size": ("output_dir: x\nper_device_eval_batch_size: -1\n", r"per_device_eval_batch_size must be >= 1, got -1"),
    "dropout-above-one": ("output_dir: x\ndropout_rate: 1.5\n", r"r\.yaml: dropout_rate must be in \[0, 1\), got 1\.5"),
    "negative-seed": ("output_dir: x\nseed: -1\n", r"r\.yaml: seed must be in \[0, 4294967295\], got -1"),
    "beta-of-one": ("output_dir: x\nadam_beta2: 1.0\n", r"adam_beta2 must be in \[0, 1\), got 1\.0"),
    "zero-save-total-limit": ("output_dir: x\nsave_total_limit: 0\n", r"save_total_limit must be >= 1 \(or null: keep every checkpoint\), got 0"),
    "misspelt-selection-metric": (
        "output_dir: x\neval_strategy: steps\neval_steps: 5\nload_best_model_at_end: true\nmetric_for_best_model: ndcg@11\n",
        r"r\.yaml: metric_for_best_model 'ndcg@11' is not a metric this run produces; choose one of \['recall@5', 'ndcg@5', "
        r"'recall@10', 'ndcg@10'\] \(metric_ks \[5, 10\]\), optionally prefixed 'eval_'",
    ),
    "selection-metric-loss": ("output_dir: x\nmetric_for_best_model: eval_loss\n", r"metric_for_best_model 'eval_loss' is not a metric this run produces"),
}


@pytest.mark.parametrize("case", sorted(RECIPE_CASES))
def test_bad_recipes(tmp_path, case):
    text, pattern = RECIPE_CASES[case]
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        parse_recipe(tmp_path / "r.yaml")


def test_bad_recipe_file_and_overrides(tmp_path, capsys):
    from hf_genrec.cli.main import main

    with pytest.raises(ConfigError, match=r"missing\.yaml: recipe file not found"):
        parse_recipe(tmp_path / "missing.yaml")
    (tmp_path / "r.yaml").write_text("output_dir: x\n")
    with pytest.raises(ConfigError, match=r"override 'd_model' is not key=value"):
        parse_recipe(tmp_path / "r.yaml", ["d_model"])
    with pytest.raises(ConfigError, match=r"unknown recipe keys \['dmodel'\]"):
        parse_recipe(tmp_path / "r.yaml", ["dmodel=3"])
    with pytest.raises(ConfigError, match=r"key 'd_model' expects int, got 'wide'"):
        parse_recipe(tmp_path / "r.yaml", ["d_model=wide"])
    with pytest.raises(ConfigError, match=r"override 'd_model=\[': invalid YAML value \(line 1: expected the node content"):
        parse_recipe(tmp_path / "r.yaml", ["d_model=["])
    with pytest.raises(ConfigError, match=r"key 'dataset' must have a value, got null"):
        parse_recipe(tmp_path / "r.yaml", ["dataset=null"])
    with pytest.raises(ConfigError, match=r"override '=5' is not key=value"):
        parse_recipe(tmp_path / "r.yaml", ["=5"])
    assert parse_recipe(tmp_path / "r.yaml", ["eval_max_users=null"]).training_args.eval_max_users is None  # optional: null is fine
    # the CLI turns it into one line on stderr and exit status 2 (no traceback)
    assert main(["train", "--config", str(tmp_path / "r.yaml"), "learning_rat=0.1"]) == 2
    err = capsys.readouterr().err
    assert "hf-genrec: error:" in err and "unknown recipe keys ['learning_rat']" in err and "Traceback" not in err


def test_bad_item_tokenizer_recipes(tmp_path):
    from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

    (tmp_path / "r.yaml").write_text("colour: red\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: .*\['colour'\]"):
        load_item_tokenizer_recipe(tmp_path / "r.yaml")
    (tmp_path / "r.yaml").write_text("method: lsh\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: .*'method' must be one of \('rqvae', 'rqkmeans', 'opq', 'colarec-kmeans'\), got 'lsh'"):
        load_item_tokenizer_recipe(tmp_path / "r.yaml")
    (tmp_path / "r.yaml").write_text("codebook_size: 0\n")
    with pytest.raises(ConfigError, match=r"'codebook_size' must be >= 1, got 0"):
        load_item_tokenizer_recipe(tmp_path / "r.yaml")
    with pytest.raises(ConfigError, match=r"unknown RQ-KMeans config keys \['colour'\]"):
        RQKMeansConfig.from_dict({"colour": 1}, source="rqkmeans_config.json")
    with pytest.raises(ConfigError, match="init must be 'kmeans\\+\\+' or 'random'"):
        RQKMeansConfig(init="farthest")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("output_dir: x\ngeneration_num_beams: 10\nmetric_ks: [5, 50]\n", id="metric-k-above-beam-width"),
        pytest.param("output_dir: x\nmetric_ks: 5\n", id="metric-ks-not-a-list"),
        pytest.param("output_dir: x\nd_model: -3\n", id="negative-width"),
        pytest.param("output_dir: x\nmax_history: 0\n", id="zero-history"),
    ],
)
def test_recipe_values_out_of_range(tmp_path, text):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"r\.yaml"):
        parse_recipe(tmp_path / "r.yaml")


@pytest.mark.parametrize("text", [pytest.param("beta: heavy\n", id="str-for-float"), pytest.param("hidden_dims: 5\n", id="int-for-list")])
def test_item_tokenizer_recipe_wrong_types(tmp_path, text):
    from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"r\.yaml"):
        load_item_tokenizer_recipe(tmp_path / "r.yaml")


# ---------------------------------------------------------------------------------------------------
# 6. top_k larger than the beam width or the catalogue
# ---------------------------------------------------------------------------------------------------
def test_top_k_larger_than_beams_or_catalogue(loaded, tmp_path):
    model, processor = loaded
    tokenizer = processor.tokenizer
    with pytest.raises(InvalidInputError, match=r"k=5 is larger than num_beams=4"):
        hf_genrec.recommend(model, processor, [[101]], k=5, num_beams=4)
    with pytest.raises(InvalidInputError, match=r"k=41 is larger than the catalogue \(40 items\)"):
        hf_genrec.recommend(model, processor, [[101]], k=41, num_beams=50)
    for bad in (0, -2, 2.5):
        with pytest.raises(InvalidInputError, match=r"k must be a positive integer"):
            hf_genrec.recommend(model, processor, [[101]], k=bad, num_beams=4)
    with pytest.raises(InvalidInputError, match=r"num_beams must be a positive integer, got 0"):
        hf_genrec.recommend(model, processor, [[101]], k=1, num_beams=0)
    with pytest.raises(InvalidInputError, match=r"1 user ids for 2 histories"):
        hf_genrec.recommend(model, processor, [[101], [102]], k=1, num_beams=2, user_ids=[1])
    enc = tokenizer.batch_encode_histories([[101, 102]])
    tables = build_id_trie(tokenizer.semantic_id_table)
    with pytest.raises(InvalidInputError, match=r"top_k=9 is larger than num_beams=8"):
        fast_beam_search(model, enc["input_ids"], enc["attention_mask"], tables, num_beams=8, top_k=9)
    # the decoder itself pads (-1, -inf) when a catalogue has fewer items than top_k
    small = SemanticIdTable.from_content_codes([7, 8, 9], np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]]), 8)
    rows, scores = fast_beam_search(model, enc["input_ids"], enc["attention_mask"], build_id_trie(small), num_beams=8, top_k=5)
    assert sorted(rows[0, :3].tolist()) == [0, 1, 2] and rows[0, 3:].tolist() == [-1, -1]
    assert torch.isfinite(scores[0, :3]).all() and torch.isinf(scores[0, 3:]).all()


def test_cli_recommend_top_k_above_beams(checkpoint, capsys):
    from hf_genrec.cli.main import main

    assert main(["recommend", "--model", str(checkpoint), "--history", "101", "102", "--top-k", "11", "--num-beams", "10"]) == 2
    assert "hf-genrec: error: k=11 is larger than num_beams=10" in capsys.readouterr().err
    assert main(["recommend", "--model", str(checkpoint), "--history", "101", "777", "--top-k", "2", "--num-beams", "4"]) == 2
    assert "item 777 has no semantic ID" in capsys.readouterr().err


def test_every_error_type_is_a_package_error():
    for error in (CheckpointMismatchError, ConfigError, DataFormatError, InvalidInputError, UnknownDatasetError, UnknownItemError):
        assert issubclass(error, HfGenRecError) and issubclass(error, ValueError)
    assert issubclass(UnknownItemError, KeyError) and str(UnknownItemError("item 3")) == "item 3"


def test_the_package_raises_builtin_errors_only_for_its_own_bugs():
    """Bad input raises a package error (callers catch HfGenRecError); a bare builtin is left to internal invariants."""
    from hf_genrec.models.colarec.collaborative_holdout import held_out_training_items

    with pytest.raises(InvalidInputError, match=r"per_user must be at least 1 and max_share in \(0, 1\), got 1 and 1.5"):
        held_out_training_items({1: [1, 2, 3, 4]}, seed=0, per_user=1, max_share=1.5)
    source = Path(hf_genrec.__file__).parent
    builtin = re.compile(r"raise (ValueError|TypeError|KeyError|RuntimeError|IndexError)\(")
    offenders = [f"{path.relative_to(source)}:{n}" for path in sorted(source.rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if builtin.search(line)]
    assert offenders == []
