"""The item -> semantic-ID table shared by every item tokenizer and every generative model.

An ID is a fixed-length tuple of codes, one per level.  Tokenizers that can map two items to the
same content codes (RQ-VAE, RQ-KMeans) get one more *disambiguation* level (TIGER's 4th token);
tokenizers that are unique by construction (ColaRec's constrained k-means) do not need it.
The table is stored as JSON, never pickle.
"""

from __future__ import annotations

import copy
import math
import operator
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import CheckpointMismatchError, DataFormatError, UnknownItemError
from ..io_utils import atomic_write_json, read_json

SEMANTIC_ID_FILE = "semantic_ids.json"


class SemanticIdTable:
    """Bijection between catalogue item ids and code tuples.

    ``codes[i]`` is the ID of ``item_ids[i]``; ``codebook_sizes[l]`` bounds the codes of level ``l``.
    ``content_levels`` counts the leading levels that carry meaning; any level after them only
    disambiguates.  ``item_keys`` (optional) are the catalogue's original keys, ``item_keys[i]`` of
    ``item_ids[i]``, so a checkpoint can answer in the keys its data came with.
    """

    def __init__(
        self,
        item_ids: Sequence[int],
        codes: np.ndarray | Sequence[Sequence[int]],
        codebook_sizes: Sequence[int],
        content_levels: int | None = None,
        method: str = "unknown",
        item_keys: Sequence[str] | None = None,
    ) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2:
            raise CheckpointMismatchError(f"semantic-ID codes must be a 2-D table, got shape {codes.shape}")
        if len(item_ids) != codes.shape[0]:
            raise CheckpointMismatchError(f"{len(item_ids)} item ids but {codes.shape[0]} code rows")
        if len(codebook_sizes) != codes.shape[1]:
            raise CheckpointMismatchError(
                f"{len(codebook_sizes)} codebook sizes for IDs of {codes.shape[1]} levels"
            )
        sizes = np.asarray(codebook_sizes, dtype=np.int64)
        if codes.size and ((codes < 0).any() or (codes >= sizes[None, :]).any()):
            bad_level = int(np.nonzero(((codes < 0) | (codes >= sizes[None, :])).any(axis=0))[0][0])
            raise CheckpointMismatchError(
                f"level {bad_level} has codes outside [0, {int(sizes[bad_level])})"
            )
        self.item_ids: list[int] = [int(i) for i in item_ids]
        self.codes = codes
        self.codebook_sizes: list[int] = [int(s) for s in sizes]
        self.content_levels = int(content_levels if content_levels is not None else codes.shape[1])
        self.method = method
        # The folder the table was read from or last saved to: item tokenizers keep their side files
        # there (ColaRec's LightGCN embeddings), so a model built on the table can find them.
        self.source_dir: Path | None = None
        # lookups are sorted arrays + binary search, not dicts: a million items cost 16 bytes each, not ~500
        items = np.asarray(self.item_ids, dtype=np.int64)
        self._item_order = np.argsort(items, kind="stable")
        self._sorted_items = items[self._item_order]
        if (self._sorted_items[1:] == self._sorted_items[:-1]).any():
            raise CheckpointMismatchError("the semantic-ID table lists an item id twice")
        packed = pack_codes(codes, self.codebook_sizes)
        if packed is None:  # a code space beyond 63 bits: tuples in a dict
            self._code_order = self._sorted_codes = None
            self._item_of_tuple = {tuple(int(c) for c in row): item for row, item in zip(codes.tolist(), self.item_ids)}
            unique_ids = len(self._item_of_tuple)
        else:
            self._code_order = np.argsort(packed, kind="stable")
            self._sorted_codes = packed[self._code_order]
            unique_ids = self.num_items - int((self._sorted_codes[1:] == self._sorted_codes[:-1]).sum())
        if unique_ids != self.num_items:
            raise CheckpointMismatchError("two items share one semantic ID; the table must be a bijection")
        self.item_keys: list[str] | None = checked_item_keys(item_keys, self.num_items)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_content_codes(
        cls,
        item_ids: Sequence[int],
        content_codes: np.ndarray,
        codebook_sizes: int | Sequence[int],
        method: str = "unknown",
    ) -> "SemanticIdTable":
        """Append a disambiguation level: items sharing all content codes get 0, 1, 2, ... in catalogue order."""
        content_codes = np.asarray(content_codes, dtype=np.int64)
        levels = content_codes.shape[1]
        if isinstance(codebook_sizes, int):
            codebook_sizes = [codebook_sizes] * levels
        last = _rank_within_groups(content_codes, list(codebook_sizes))
        max_group = int(last.max()) + 1 if len(last) else 1
        codes = np.concatenate([content_codes, last[:, None]], axis=1)
        return cls(item_ids, codes, list(codebook_sizes) + [max_group], content_levels=levels, method=method)

    def with_item_keys(self, item_keys: Sequence[str] | None) -> "SemanticIdTable":
        """The same IDs with the catalogue's original keys (``item_keys[i]`` of ``item_ids[i]``)."""
        table = copy.copy(self)
        table.item_keys = checked_item_keys(item_keys, self.num_items)
        return table

    # ------------------------------------------------------------------ sizes
    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_levels(self) -> int:
        return int(self.codes.shape[1])

    def __len__(self) -> int:
        return self.num_items

    def __contains__(self, item_id: object) -> bool:
        return self._find_row(item_id) is not None

    # ------------------------------------------------------------------ lookups
    def _find_row(self, item_id: object) -> int | None:
        key = _item_key(item_id)
        if key is None or not INT64_MIN <= key <= INT64_MAX:
            return None
        pos = int(np.searchsorted(self._sorted_items, key))
        if pos < len(self._sorted_items) and self._sorted_items[pos] == key:
            return int(self._item_order[pos])
        return None

    def _unknown(self, item_id: object) -> UnknownItemError:
        return UnknownItemError(f"item {item_id!r} has no semantic ID (not in the table of {self.num_items} items)")

    def row_of(self, item_id: int) -> int:
        """Table row of an item id; only integers count (``1.5`` or ``"1"`` are never silently truncated)."""
        row = self._find_row(item_id)
        if row is None:
            raise self._unknown(item_id)
        return row

    def rows_of(self, item_ids: Iterable[int]) -> np.ndarray:
        """Table rows of several item ids at once (one vectorised search); UnknownItemError names the first unknown."""
        item_ids = list(item_ids)
        keys = [_item_key(i) for i in item_ids]
        if any(k is None or not INT64_MIN <= k <= INT64_MAX for k in keys):
            raise self._unknown(next(i for i, k in zip(item_ids, keys) if k is None or not INT64_MIN <= k <= INT64_MAX))
        wanted = np.asarray(keys, dtype=np.int64)
        pos = np.searchsorted(self._sorted_items, wanted).clip(max=max(len(self._sorted_items) - 1, 0))
        found = self._sorted_items[pos] == wanted if len(self._sorted_items) else np.zeros(len(wanted), dtype=bool)
        if not found.all():
            raise self._unknown(item_ids[int(np.argmin(found))])
        return self._item_order[pos]

    def codes_of(self, item_id: int) -> tuple[int, ...]:
        return tuple(int(c) for c in self.codes[self.row_of(item_id)])

    def codes_for(self, item_ids: Iterable[int]) -> np.ndarray:
        rows = self.rows_of(item_ids)
        return self.codes[rows] if len(rows) else np.zeros((0, self.num_levels), dtype=np.int64)

    def item_of(self, codes: Sequence[int]) -> int | None:
        """The item with this ID, or ``None`` when the tuple names no item."""
        codes = [int(c) for c in codes]
        if self._sorted_codes is None:
            return self._item_of_tuple.get(tuple(codes))
        if len(codes) != self.num_levels or any(not 0 <= c < k for c, k in zip(codes, self.codebook_sizes)):
            return None
        key = pack_codes(np.asarray([codes], dtype=np.int64), self.codebook_sizes)[0]
        pos = int(np.searchsorted(self._sorted_codes, key))
        if pos < len(self._sorted_codes) and self._sorted_codes[pos] == key:
            return self.item_ids[int(self._code_order[pos])]
        return None

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict:
        """Quality figures of the ID assignment (collisions are measured on the content levels)."""
        content = self.codes[:, : self.content_levels]
        prefix_counts = _group_sizes(content, self.codebook_sizes[: self.content_levels])
        n = max(self.num_items, 1)
        usage, entropy = [], []
        for level in range(self.content_levels):
            counts = np.bincount(content[:, level], minlength=self.codebook_sizes[level])
            usage.append(float((counts > 0).sum() / self.codebook_sizes[level]))
            p = counts[counts > 0] / counts.sum()
            entropy.append(float(-(p * np.log2(p)).sum()))
        return {
            "items": self.num_items,
            "levels": self.num_levels,
            "content_levels": self.content_levels,
            "codebook_size": self.codebook_sizes[0] if len(set(self.codebook_sizes[: self.content_levels])) == 1 else self.codebook_sizes,
            "codebook_sizes": self.codebook_sizes,
            "unique_ids": self.num_items,
            "unique_content_prefixes": len(prefix_counts),
            "collision_rate": 1.0 - len(prefix_counts) / n,
            "max_items_per_prefix": int(prefix_counts.max()) if len(prefix_counts) else 0,
            "usage_per_level": usage,
            "entropy_per_level": entropy,
            "max_entropy_per_level": [math.log2(s) for s in self.codebook_sizes[: self.content_levels]],
        }

    def collision_histogram(self) -> dict[int, int]:
        """How many content prefixes hold exactly k items, for each k."""
        sizes = _group_sizes(self.codes[:, : self.content_levels], self.codebook_sizes[: self.content_levels])
        values, counts = np.unique(sizes, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {
            "format": "hf_genrec.semantic_ids/1",
            "method": self.method,
            "codebook_sizes": self.codebook_sizes,
            "content_levels": self.content_levels,
            "item_ids": self.item_ids,
            "codes": self.codes.tolist(),
            **({"item_keys": self.item_keys} if self.item_keys is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict, source: object = "<dict>") -> "SemanticIdTable":
        if not isinstance(data, dict):
            raise DataFormatError("a semantic-ID table is a JSON object", path=source)
        missing = [k for k in ("codebook_sizes", "item_ids", "codes") if k not in data]
        if missing:
            raise DataFormatError(f"semantic-ID table lacks {missing}", path=source)
        data = {**data, **{k: _plain(data[k]) for k in ("codebook_sizes", "item_ids", "codes")}}
        for key in ("codebook_sizes", "item_ids"):
            values = data[key]
            if not isinstance(values, list) or not all(_is_int(v) for v in values):
                raise DataFormatError("expected a list of integers", path=source, field=key)
        levels = len(data["codebook_sizes"])
        codes = data["codes"]
        if not isinstance(codes, list) or len(codes) != len(data["item_ids"]):
            raise CheckpointMismatchError(
                f"{source}: {len(data['item_ids'])} item ids but "
                f"{len(codes) if isinstance(codes, list) else 'no list of'} code rows"
            )
        if not _is_int_matrix(codes, levels):  # the fast check failed: find the row to blame
            for row, item_codes in enumerate(codes):
                if not isinstance(item_codes, list) or not all(_is_int(c) for c in item_codes):
                    raise DataFormatError(f"code row {row} is not a list of integers", path=source, field="codes")
                if len(item_codes) != levels:
                    raise CheckpointMismatchError(
                        f"{source}: item {data['item_ids'][row]} has {len(item_codes)} codes but codebook_sizes "
                        f"lists {levels} levels"
                    )
        content_levels = data.get("content_levels")
        if content_levels is not None and (not _is_int(content_levels) or not 1 <= content_levels <= levels):
            raise DataFormatError(f"must be an integer in [1, {levels}], got {content_levels!r}", path=source, field="content_levels")
        item_keys = data.get("item_keys")
        if item_keys is not None and (
            not isinstance(item_keys, list) or len(item_keys) != len(codes) or not all(isinstance(k, str) and k for k in item_keys)
        ):
            raise DataFormatError("expected one non-empty string per item id", path=source, field="item_keys")
        try:
            return cls(
                data["item_ids"],
                np.asarray(codes, dtype=np.int64).reshape(len(codes), levels),
                data["codebook_sizes"],
                content_levels=content_levels,
                method=data.get("method", "unknown"),
                item_keys=item_keys,
            )
        except CheckpointMismatchError as exc:
            raise CheckpointMismatchError(f"{source}: {exc}") from None

    def save(self, directory: str | os.PathLike, filename: str = SEMANTIC_ID_FILE) -> Path:
        path = Path(directory) / filename
        atomic_write_json(path, self.to_dict())
        self.source_dir = path.parent
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SemanticIdTable":
        """Load from a JSON file or from a directory holding ``semantic_ids.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / SEMANTIC_ID_FILE
        data = read_json(path, "semantic-ID table")
        table = cls.from_dict(data, source=path)
        table.source_dir = path.parent
        return table

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SemanticIdTable)
            and self.item_ids == other.item_ids
            and self.codebook_sizes == other.codebook_sizes
            and np.array_equal(self.codes, other.codes)
        )

    def __repr__(self) -> str:
        return f"SemanticIdTable(items={self.num_items}, levels={self.num_levels}, codebook_sizes={self.codebook_sizes}, method={self.method!r})"


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def pack_codes(codes: np.ndarray, codebook_sizes: Sequence[int]) -> np.ndarray | None:
    """Each row of codes as one int64 (mixed radix over ``codebook_sizes``), or ``None`` when the code
    space does not fit in 63 bits.  Rows compare as the integers do, so sorting groups equal IDs."""
    if math.prod(int(k) for k in codebook_sizes) >= 2**63:
        return None
    packed = np.zeros(codes.shape[0], dtype=np.int64)
    for level, size in enumerate(codebook_sizes):
        packed = packed * int(size) + codes[:, level]
    return packed


def _group_sizes(codes: np.ndarray, codebook_sizes: Sequence[int]) -> np.ndarray:
    """How many rows share each distinct code row."""
    packed = pack_codes(codes, codebook_sizes)
    if packed is None:
        return np.asarray(list(Counter(map(tuple, codes.tolist())).values()), dtype=np.int64)
    return np.unique(packed, return_counts=True)[1]


def _rank_within_groups(codes: np.ndarray, codebook_sizes: Sequence[int]) -> np.ndarray:
    """For each row, how many earlier rows have the same codes (0, 1, 2, ... in row order)."""
    packed = pack_codes(codes, codebook_sizes) if codes.size else None
    if packed is None or (codes >= np.asarray(codebook_sizes)[None, :]).any() or (codes < 0).any():
        counts: Counter = Counter()  # out-of-range codes are refused by the constructor; keep them comparable
        rank = np.empty(len(codes), dtype=np.int64)
        for row, prefix in enumerate(map(tuple, codes.tolist())):
            rank[row] = counts[prefix]
            counts[prefix] += 1
        return rank
    _, group, sizes = np.unique(packed, return_inverse=True, return_counts=True)
    order = np.argsort(group.reshape(-1), kind="stable")  # rows grouped, row order kept inside each group
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - starts
    return rank


def checked_item_keys(item_keys: Sequence[str] | None, num_items: int) -> list[str] | None:
    """Original item keys as a list: one non-empty, distinct string per item (CheckpointMismatchError otherwise)."""
    if item_keys is None:
        return None
    keys = list(item_keys)
    if len(keys) != num_items:
        raise CheckpointMismatchError(f"{len(keys)} item keys for {num_items} items")
    if not all(isinstance(k, str) and k for k in keys):
        raise CheckpointMismatchError("item keys must be non-empty strings")
    if len(set(keys)) != len(keys):
        raise CheckpointMismatchError("the semantic-ID table lists an item key twice")
    return keys


def _is_int_matrix(rows: object, width: int) -> bool:
    """Whether ``rows`` is a list of lists of ``width`` plain integers (no bools, no floats)."""
    return (
        isinstance(rows, list)
        and all(type(row) is list and len(row) == width for row in rows)
        and all(type(c) is int for row in rows for c in row)
    )


def _plain(value: object) -> object:
    """numpy arrays and tuples as (nested) lists, so a table built in code validates like one read from JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _item_key(item_id: object) -> int | None:
    """The integer an item id stands for, or ``None`` (floats, strings, bools are not item ids)."""
    if isinstance(item_id, bool):
        return None
    try:
        return operator.index(item_id)
    except TypeError:
        return None
