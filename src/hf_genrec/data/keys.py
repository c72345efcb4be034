"""Original keys <-> internal ids: the one conversion between a user's own item / user keys (ASINs,
SKUs, account names) and the integers the package works with.

Datasets imported from tables keep both maps (``items.jsonl``'s ``item_key``, ``users.jsonl``); the
semantic-ID table and so every checkpoint carries the item keys, so a saved model answers in the
keys it was trained on.  Models, processors and ``recommend()`` keep speaking internal ids; the
conversion happens at the edges with a :class:`KeyMap`.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Sequence

from ..errors import DataFormatError, InvalidInputError, UnknownItemError


def key_text(value: object) -> str | None:
    """The key a value stands for: strings (stripped) and integers as text; ``None`` for anything else.

    Integral floats (an integer column with gaps read by pandas) count as integers, so ``12.0`` is ``"12"``.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        return str(int(value))
    return None


class KeyMap:
    """A one-to-one map between original keys (text) and internal integer ids.

    ``kind`` ("item" or "user") names the keys in error messages; an unknown item key raises
    :class:`UnknownItemError`, an unknown user key :class:`InvalidInputError`.
    """

    def __init__(self, ids: Sequence[int], keys: Sequence[str], kind: str = "item", source: object = None) -> None:
        if len(ids) != len(keys):
            raise DataFormatError(f"{len(ids)} {kind} ids but {len(keys)} {kind} keys", path=source)
        self.kind = kind
        self._id_of: dict[str, int] = {}
        self._key_of: dict[int, str] = {}
        for internal, key in zip(ids, keys):
            if not isinstance(key, str) or not key:
                raise DataFormatError(f"{kind} {internal}: key must be a non-empty string, got {key!r}", path=source, field=f"{kind}_key")
            if key in self._id_of:
                raise DataFormatError(
                    f"{kind} key {key!r} names both {kind} {self._id_of[key]} and {kind} {internal}", path=source, field=f"{kind}_key"
                )
            self._id_of[key] = int(internal)
            self._key_of[int(internal)] = key

    def __len__(self) -> int:
        return len(self._id_of)

    def __contains__(self, key: object) -> bool:
        text = key_text(key)
        return text is not None and text in self._id_of

    @property
    def keys(self) -> list[str]:
        return list(self._id_of)

    def id_of(self, key: object) -> int:
        """The internal id of an original key (an integer key may be given as an int)."""
        internal = self._id_of.get(key_text(key))  # type: ignore[arg-type]
        if internal is None:
            message = f"{self.kind} key {key!r} is not among the {len(self)} {self.kind} keys"
            raise UnknownItemError(message) if self.kind == "item" else InvalidInputError(message)
        return internal

    def key_of(self, internal: int) -> str:
        try:
            return self._key_of[int(internal)]
        except (KeyError, TypeError, ValueError):
            raise UnknownItemError(f"{self.kind} {internal!r} has no key (not among the {len(self)} {self.kind}s)") from None

    def ids_of(self, keys: Iterable[object]) -> list[int]:
        return [self.id_of(key) for key in keys]

    def keys_of(self, ids: Iterable[int]) -> list[str]:
        return [self.key_of(internal) for internal in ids]


__all__ = ["KeyMap", "key_text"]
