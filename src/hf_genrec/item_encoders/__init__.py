"""Item text encoders: sentence-transformers embeddings of catalogue texts, cached on disk; decoder-only
LLM encoders (mean / last-token pooling); LoRA adaptation on collaborative signal."""

from .llm_encoder import POOLING_MODES, is_plain_transformers_dir, load_llm_encoder
from .lora import (
    DEFAULT_BASE_MODEL_ID,
    ItemEncoderLoraArguments,
    adapter_fingerprint,
    add_lora_adapter,
    evaluate_pairs,
    is_adapter_dir,
    load_adapted_encoder,
    load_item_encoder_recipe,
    next_item_pairs,
    push_item_encoder,
    register_local_base_model,
    resolve_base_model,
    save_adapter,
    train_item_encoder_lora,
)
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
    "ItemEncoderLoraArguments",
    "POOLING_MODES",
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
    "load_item_encoder_recipe",
    "load_llm_encoder",
    "load_sentence_encoder",
    "next_item_pairs",
    "push_item_encoder",
    "register_local_base_model",
    "resolve_base_model",
    "save_adapter",
    "train_item_encoder_lora",
]
