"""Item text encoders: sentence-transformers embeddings of catalogue texts, cached on disk."""

from .sentence_encoder import (
    default_cache_dir,
    default_encoder_path,
    embedding_cache_key,
    encode_item_texts,
    encoder_fingerprint,
    load_sentence_encoder,
)

__all__ = [
    "default_cache_dir",
    "default_encoder_path",
    "embedding_cache_key",
    "encode_item_texts",
    "encoder_fingerprint",
    "load_sentence_encoder",
]
