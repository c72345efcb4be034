"""Sentence-transformers item embeddings: real Beauty texts, cache validity, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_genrec.errors import InvalidInputError
from hf_genrec.item_encoders import (
    default_cache_dir,
    embedding_cache_key,
    encode_item_texts,
    encoder_fingerprint,
)
from hf_genrec.item_encoders import sentence_encoder


def _beauty_texts(data_dir: Path, n: int) -> list[str]:
    texts = []
    with open(data_dir / "amazon-beauty" / "items.jsonl", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            texts.append(f"{item['title'] or ''}. Brand: {item['brand'] or ''}")
            if len(texts) == n:
                break
    return texts


def _refuse_loading(*args, **kwargs):
    raise AssertionError("the encoder was loaded although the cache should have answered")


def test_real_texts_embed_and_cache(data_dir, minilm_path, tmp_path, monkeypatch):
    texts = _beauty_texts(data_dir, 24)
    first = encode_item_texts(texts, minilm_path, batch_size=8, cache_dir=tmp_path, show_progress_bar=False)
    assert first.shape == (24, 384) and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    # MiniLM's pooling normalises: unit vectors, and different products are not identical
    assert torch.allclose(first.norm(dim=1), torch.ones(24), atol=1e-4)
    assert (first[0] - first[5]).abs().max() > 1e-3
    assert len(list(tmp_path.glob("*.safetensors"))) == 1

    monkeypatch.setattr(sentence_encoder, "load_sentence_encoder", _refuse_loading)
    again = encode_item_texts(texts, minilm_path, cache_dir=tmp_path, show_progress_bar=False)
    assert torch.equal(first, again)


def test_changed_text_never_reuses_stale_cache(data_dir, minilm_path, tmp_path):
    texts = _beauty_texts(data_dir, 6)
    before = encode_item_texts(texts, minilm_path, cache_dir=tmp_path, show_progress_bar=False)
    changed = list(texts)
    changed[3] = changed[3] + " (new formula)"
    after = encode_item_texts(changed, minilm_path, cache_dir=tmp_path, show_progress_bar=False)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert not torch.allclose(before[3], after[3])
    assert torch.allclose(before[[0, 1, 2, 4, 5]], after[[0, 1, 2, 4, 5]], atol=1e-5)


def test_cache_key_tracks_texts_boundaries_and_encoder(tmp_path):
    assert embedding_cache_key("enc", ["ab", "c"]) != embedding_cache_key("enc", ["a", "bc"])
    assert embedding_cache_key("enc", ["a"]) != embedding_cache_key("other", ["a"])
    assert embedding_cache_key("enc", ["a"]) != embedding_cache_key("enc", ["a"], normalize_embeddings=True)

    model_dir = tmp_path / "encoder"
    model_dir.mkdir()
    weights = model_dir / "model.safetensors"
    weights.write_bytes(b"\0" * 10)
    before = encoder_fingerprint(model_dir)
    weights.write_bytes(b"\0" * 11)  # retrained weights: size (and mtime) change
    assert encoder_fingerprint(model_dir) != before
    assert encoder_fingerprint("sentence-transformers/all-MiniLM-L6-v2").startswith("hub:")


def test_corrupt_cache_file_is_recomputed(data_dir, minilm_path, tmp_path):
    texts = _beauty_texts(data_dir, 3)
    good = encode_item_texts(texts, minilm_path, cache_dir=tmp_path, show_progress_bar=False)
    (cache_file,) = tmp_path.glob("*.safetensors")
    cache_file.write_bytes(b"not a safetensors file")
    again = encode_item_texts(texts, minilm_path, cache_dir=tmp_path, show_progress_bar=False)
    assert torch.allclose(good, again, atol=1e-5)


class _NanEncoder(torch.nn.Module):
    """A stand-in model whose encoder diverged: every output is NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def encode(self, texts, **kwargs):
        return torch.full((len(texts), 4), float("nan"))


def test_nan_embeddings_and_bad_texts_raise(tmp_path):
    with pytest.raises(InvalidInputError, match="NaN"):
        encode_item_texts(["a", "b"], _NanEncoder(), cache_dir=tmp_path, show_progress_bar=False)
    assert not list(tmp_path.glob("*.safetensors"))  # nothing bad was cached
    with pytest.raises(InvalidInputError, match="empty"):
        encode_item_texts([], cache_dir=tmp_path)
    with pytest.raises(InvalidInputError, match=r"texts\[1\]"):
        encode_item_texts(["ok", None], cache_dir=tmp_path)
    with pytest.raises(InvalidInputError):
        encode_item_texts("one string", cache_dir=tmp_path)


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_GENREC_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HF_GENREC_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "hf_genrec" / "embeddings"
