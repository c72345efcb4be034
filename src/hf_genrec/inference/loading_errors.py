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
    """``load()``; any failure but the package's own becomes a DataFormatError naming ``folder`` and ``what``."""
    try:
        return load()
    except HfGenRecError:
        raise
    except Exception as exc:  # noqa: BLE001 - the libraries' loaders raise many unrelated types (see module docstring)
        text = " ".join(str(exc).split())
        raise DataFormatError(f"cannot load the {what} ({type(exc).__name__}: {text[:300]})", path=folder) from None


__all__ = ["loading"]
