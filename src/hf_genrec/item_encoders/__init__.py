"""Item text encoders: sentence-transformers embeddings of catalogue texts, cached on disk; decoder-only
LLM encoders (mean / last-token pooling); LoRA adaptation on collaborative signal.

Modules, lowest first: ``llm_encoder`` (plain transformers checkpoints + pooling), ``plain_encoder``
(any non-adapter encoder: identity and loading), ``lora_base_models`` (where an adapter's base comes
from), ``lora_adapters`` (add / save / fingerprint / load an adapter), ``sentence_encoder`` (any
encoder by name, the embedding cache), ``item_pairs`` (training pairs and their measure),
``lora_training`` (the adaptation run).
"""

from .item_pairs import evaluate_pairs, next_item_pairs, pair_dataset, split_pairs
from .llm_encoder import is_plain_transformers_dir, load_llm_encoder
from .lora_adapters import adapter_fingerprint, add_lora_adapter, is_adapter_dir, load_adapted_encoder, save_adapter
from .lora_base_models import DEFAULT_BASE_MODEL_ID, register_local_base_model, resolve_base_model
from .lora_training import train_item_encoder_lora
from .sentence_encoder import (
    default_cache_dir,
    default_encoder_path,
    embedding_cache_key,
    encode_item_texts,
    encoder_fingerprint,
    load_sentence_encoder,
)

__all__ = [
    "DEFAULT_BASE_MODEL_ID",
    "adapter_fingerprint",
    "add_lora_adapter",
    "default_cache_dir",
    "default_encoder_path",
    "embedding_cache_key",
    "encode_item_texts",
    "encoder_fingerprint",
    "evaluate_pairs",
    "is_adapter_dir",
    "is_plain_transformers_dir",
    "load_adapted_encoder",
    "load_llm_encoder",
    "load_sentence_encoder",
    "next_item_pairs",
    "pair_dataset",
    "register_local_base_model",
    "resolve_base_model",
    "save_adapter",
    "split_pairs",
    "train_item_encoder_lora",
]
