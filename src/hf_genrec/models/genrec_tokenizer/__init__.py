"""GenRecTokenizer: T5-style tokenizer over semantic-ID code tokens, user and task tokens."""

from __future__ import annotations

from .tokenization_genrec import LEVEL_LETTERS, GenRecTokenizer, code_token, user_bucket


def register_genrec_tokenizer() -> None:
    """Make ``AutoTokenizer.from_pretrained`` return a GenRecTokenizer for TIGER checkpoints (idempotent).

    Without registration AutoTokenizer silently falls back to a generic tokenizer.
    """
    from transformers import AutoTokenizer

    from ..tiger.configuration_tiger import TigerConfig, register_tiger_config

    register_tiger_config()
    AutoTokenizer.register(TigerConfig, tokenizer_class=GenRecTokenizer, exist_ok=True)


__all__ = ["GenRecTokenizer", "code_token", "user_bucket", "LEVEL_LETTERS", "register_genrec_tokenizer"]
