"""End-to-end semantic-ID builds (RQ-VAE and RQ-KMeans) through the Python API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genrec_fixtures import recipe_with
from hf_genrec.cli.main import main
from hf_genrec.data import ItemCatalogue
from hf_genrec.errors import ConfigError
from hf_genrec.item_tokenizers.rqkmeans import RQKMeansTokenizer
from hf_genrec.item_tokenizers.rqvae import RQVAETokenizerModel
from hf_genrec.item_tokenizers.build import build_semantic_ids
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

RECIPE = Path(__file__).resolve().parents[1] / "training_args" / "rqvae-beauty.yaml"
SUMMARY_KEYS = {
    "items", "levels", "codebook_size", "unique_ids", "collision_rate", "usage_per_level",
    "max_items_per_prefix", "seconds",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _beauty_items(data_dir: Path, n: int) -> list[dict]:
    items = []
    with open(data_dir / "amazon-beauty" / "items.jsonl", encoding="utf-8") as handle:
        for line in handle:
            items.append(json.loads(line))
            if len(items) == n:
                break
    return items


@pytest.fixture(scope="module")
def subset(data_dir):
    catalogue = ItemCatalogue(_beauty_items(data_dir, 600))
    texts = catalogue.texts()
    texts[1:4] = [texts[0]] * 3  # crafted duplicates: four items, one text
    return catalogue.item_ids, texts


@pytest.fixture()
def cache(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "embedding-cache")


def test_default_recipe_parses_and_rejects_unknown_keys(tmp_path):
    recipe, args = load_item_tokenizer_recipe(RECIPE, output_dir=str(tmp_path))
    assert (recipe.dataset, recipe.method, recipe.num_levels, recipe.codebook_size) == ("amazon-beauty", "rqvae", 3, 256)
    assert args.per_device_train_batch_size >= 512 and args.save_strategy == "no"
    bad = tmp_path / "bad.yaml"
    bad.write_text("codebook_size: 64\ncodebok_size: 64\n")
    with pytest.raises(ConfigError, match="codebok_size"):
        load_item_tokenizer_recipe(bad)
    bad.write_text("method: vq\n")
    with pytest.raises(ConfigError, match="method"):
        load_item_tokenizer_recipe(bad)


@pytest.mark.parametrize("method", ["rqvae", "rqkmeans"])
def test_build_from_texts_saves_a_reloadable_unique_table(subset, cache, minilm_path, tmp_path, method):
    item_ids, texts = subset
    summary = build_semantic_ids(
        method=method, recipe_path=RECIPE, output_dir=tmp_path, item_ids=item_ids, texts=texts,
        encoder=minilm_path, embedding_cache_dir=cache, show_progress_bar=False,
        codebook_size=32, hidden_dims=[128, 64], latent_dim=16, num_train_epochs=15,
        per_device_train_batch_size=128, logging_steps=40, learning_rate=3e-3, dead_code_window=10, kmeans_iters=10,
    ).summary
    assert SUMMARY_KEYS <= set(summary)
    assert summary["items"] == summary["unique_ids"] == 600 and summary["levels"] == 4
    assert summary["usage_per_level"][0] >= 0.8
    table = SemanticIdTable.load(tmp_path)
    duplicates = [table.codes_of(i) for i in item_ids[:4]]
    assert len(set(duplicates)) == 4 and len({d[:3] for d in duplicates}) == 1
    assert table.stats()["collision_rate"] == pytest.approx(summary["collision_rate"], abs=1e-6)
    loaded = (RQVAETokenizerModel if method == "rqvae" else RQKMeansTokenizer).from_pretrained(tmp_path)
    assert loaded.semantic_id_table == table
    from hf_genrec.item_encoders import encode_item_texts

    embeddings = encode_item_texts(texts, minilm_path, cache_dir=cache, show_progress_bar=False)
    assert np.array_equal(loaded.encode_codes(embeddings).numpy(), table.codes[:, :3])


def test_cli_on_a_small_real_catalogue(data_dir, minilm_path, tmp_path, capsys):
    """`hf-genrec build-semantic-ids` on a dataset folder cut from Beauty (300 items, their users)."""
    folder = tmp_path / "data" / "beauty-mini"
    folder.mkdir(parents=True)
    items = _beauty_items(data_dir, 300)
    (folder / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    lines = []
    for line in (data_dir / "amazon-beauty" / "sequences.txt").read_text().splitlines():
        user, *seq = line.split()
        kept = [i for i in seq if int(i) <= 300]
        if len(kept) >= 3:
            lines.append(" ".join([user, *kept]))
    (folder / "sequences.txt").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(recipe_with(RECIPE, encoder=minilm_path, codebook_size=16, hidden_dims=[64], latent_dim=8,
                                  per_device_train_batch_size=64, logging_steps=20))
    out = tmp_path / "ids"
    code = main([
        "build-semantic-ids", "--dataset", "beauty-mini", "--data-dir", str(tmp_path / "data"),
        "--config", str(recipe), "--output", str(out), "--epochs", "4", "--plot", str(tmp_path / "ids.png"),
        "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
    ])
    assert code == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert len(stdout) == 1  # training logs go to stderr; stdout is the JSON result only
    result = json.loads(stdout[-1])
    assert SUMMARY_KEYS <= set(result) and result["items"] == result["unique_ids"] == 300
    assert result["method"] == "rqvae" and result["dataset"] == "beauty-mini"
    assert (tmp_path / "ids.png").stat().st_size > 1000
    model = RQVAETokenizerModel.from_pretrained(out)
    assert model.semantic_id_table.num_items == 300
    assert model.semantic_id_table.item_of(model.semantic_id_table.codes_of(17)) == 17

    code = main([
        "build-semantic-ids", "--dataset", "beauty-mini", "--data-dir", str(tmp_path / "data"),
        "--config", str(recipe), "--output", str(tmp_path / "km"), "--method", "rqkmeans",
        "--cache-dir", str(tmp_path / "cache"),
    ])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["method"] == "rqkmeans" and result["embedding_seconds"] < 5  # warm cache
    assert RQKMeansTokenizer.from_pretrained(tmp_path / "km").semantic_id_table.num_items == 300

    # the output folder follows the training's rules: a user's files are never replaced
    kmeans_args = ["build-semantic-ids", "--dataset", "beauty-mini", "--data-dir", str(tmp_path / "data"), "--config", str(recipe),
                   "--method", "rqkmeans", "--cache-dir", str(tmp_path / "cache")]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "semantic_ids.json").write_text("my own table")
    assert main(kmeans_args + ["--output", str(mine)]) == 2
    assert "output_dir is not empty (semantic_ids.json)" in capsys.readouterr().err
    assert (mine / "semantic_ids.json").read_text() == "my own table" and sorted(p.name for p in mine.iterdir()) == ["semantic_ids.json"]
    built = (tmp_path / "km" / "semantic_ids.json").read_bytes()
    assert main(kmeans_args + ["--output", str(tmp_path / "km")]) == 0  # the same command again: its own folder
    assert (tmp_path / "km" / "semantic_ids.json").read_bytes() == built
    capsys.readouterr()
    assert main(kmeans_args + ["--output", str(tmp_path / "km"), "--seed", "7"]) == 2  # other arguments: not its folder
    assert "argument" in capsys.readouterr().err
    assert main(kmeans_args + ["--output", str(tmp_path / "km"), "--seed", "7", "--overwrite-output-dir"]) == 0
