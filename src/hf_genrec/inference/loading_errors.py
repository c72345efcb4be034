"""One error type for whatever goes wrong while a saved folder's files are read.

transformers, tokenizers and safetensors raise their own exceptions for a truncated
``model.safetensors`` or ``tokenizer.json`` (``SafetensorError``, ``JSONDecodeError``, a plain
``Exception``...); the command line turns only the package's errors into one-line messages.
"""

from __future__ import annotations

import os
from typing import Callable, TypeVar

from ..errors import DataFormatError, HfGenRecError

T = TypeVar("T")


def loading(folder: str | os.PathLike, what: str, load: Callable[[], T]) -> T:
    """``load()``; any failure becomes an error naming ``folder`` and ``what`` (the package's own keep their type)."""
    try:
        return load()
    except HfGenRecError as exc:
        if str(folder) in str(exc):
            raise
        raise type(exc)(f"{folder}: {what}: {exc}") from None  # a config's own check names no file
    except Exception as exc:  # noqa: BLE001 - the libraries' loaders raise many unrelated types (see module docstring)
        text = " ".join(str(exc).split())
        raise DataFormatError(f"cannot load the {what} ({type(exc).__name__}: {text[:300]})", path=folder) from None


__all__ = ["loading"]
