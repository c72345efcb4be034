"""The package's own exception types, so callers can catch hf_genrec failures precisely."""

from __future__ import annotations


class HfGenRecError(Exception):
    """Base class of every error raised on purpose by hf_genrec."""


class DataFormatError(HfGenRecError, ValueError):
    """A data file is missing, empty or malformed; the message names file, line and field."""

    def __init__(self, message: str, *, path: object = None, line: int | None = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path = path
        self.line = line
        self.field = field


class UnknownDatasetError(HfGenRecError, ValueError):
    """A dataset name the package does not know."""


class UnknownItemError(HfGenRecError, KeyError, ValueError):
    """An item id that is not in the catalogue or the semantic-ID table."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(HfGenRecError, ValueError):
    """A recipe or model configuration that is invalid (unknown key, wrong type, bad value)."""


class CheckpointMismatchError(HfGenRecError, ValueError):
    """Parts of a checkpoint (ID table, tokenizer, config) disagree with each other."""


class InvalidInputError(HfGenRecError, ValueError):
    """An argument to a public function is out of range (empty history, NaN embedding, top_k too large)."""
