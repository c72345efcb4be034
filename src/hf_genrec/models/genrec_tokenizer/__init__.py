"""GenRecTokenizer: T5-style tokenizer over semantic-ID code tokens, user and task tokens."""

from __future__ import annotations

from .tokenization_genrec import LEVEL_LETTERS, GenRecTokenizer, code_token, user_bucket

__all__ = ["GenRecTokenizer", "LEVEL_LETTERS", "code_token", "user_bucket"]
