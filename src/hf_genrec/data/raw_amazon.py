"""Build a benchmark folder (sequences.txt + items.jsonl) from the public Amazon 2014 raw files.

For users without ../shared/data: the 5-core review file and the metadata file of a category,
given as local paths or downloaded from the McAuley lab's site, become the same format that
`load_rec_dataset` reads.  Sequences are each user's reviews in time order (file order breaks
ties); users and items are numbered from 1 in order of first appearance.
"""

from __future__ import annotations

import ast
import gzip
import json
import logging
import os
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataFormatError
from ..io_utils import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

RAW_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/{name}"


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Lines of a (gzipped) file of JSON objects or of Python dict literals (the 2014 metadata)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                try:
                    record = ast.literal_eval(line)  # literals only: never executes code
                except (ValueError, SyntaxError):
                    raise DataFormatError("neither JSON nor a Python literal", path=path, line=number) from None
            if not isinstance(record, dict):
                raise DataFormatError("expected an object", path=path, line=number)
            yield number, record


def _fetch(name: str, cache_dir: Path) -> Path:
    target = cache_dir / name
    if not target.exists():
        url = RAW_URL.format(name=name)
        logger.info("downloading %s", url)
        with atomic_path(target) as tmp, urllib.request.urlopen(url) as response:  # noqa: S310 - fixed https host
            tmp.write_bytes(response.read())
    return target


def k_core(sequences: dict[str, list[tuple[int, int, str]]], k: int) -> dict[str, list[tuple[int, int, str]]]:
    """Drop users and items with fewer than ``k`` interactions until none is left."""
    while True:
        item_counts = Counter(item for events in sequences.values() for _, _, item in events)
        kept = {}
        for user, events in sequences.items():
            events = [e for e in events if item_counts[e[2]] >= k]
            if len(events) >= k:
                kept[user] = events
        if kept.keys() == sequences.keys() and all(len(kept[u]) == len(sequences[u]) for u in kept):
            return kept
        sequences = kept


def build_amazon_dataset(
    category: str,
    output_dir: str | os.PathLike,
    reviews: str | os.PathLike | None = None,
    meta: str | os.PathLike | None = None,
    min_interactions: int = 5,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    cache = Path(cache_dir or os.environ.get("HF_GENREC_CACHE", Path.home() / ".cache" / "hf_genrec")) / "raw"
    reviews_path = Path(reviews) if reviews else _fetch(f"reviews_{category}_5.json.gz", cache)
    meta_path = Path(meta) if meta else _fetch(f"meta_{category}.json.gz", cache)

    events: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for number, record in _records(reviews_path):
        for field in ("reviewerID", "asin", "unixReviewTime"):
            if field not in record:
                raise DataFormatError("missing field", path=reviews_path, line=number, field=field)
        try:
            time = int(record["unixReviewTime"])
        except (TypeError, ValueError):
            raise DataFormatError("not an integer", path=reviews_path, line=number, field="unixReviewTime") from None
        events[str(record["reviewerID"])].append((time, number, str(record["asin"])))
    if not events:
        raise DataFormatError("no reviews", path=reviews_path)
    events = k_core(events, min_interactions)

    item_ids: dict[str, int] = {}
    lines = []
    for user_number, (user, user_events) in enumerate(events.items(), start=1):
        items = [item_ids.setdefault(asin, len(item_ids) + 1) for _, _, asin in sorted(user_events)]
        lines.append(" ".join(map(str, [user_number, *items])))

    metadata: dict[str, dict[str, Any]] = {}
    for number, record in _records(meta_path):
        if "asin" not in record:
            raise DataFormatError("missing field", path=meta_path, line=number, field="asin")
        if record["asin"] in item_ids:
            metadata[record["asin"]] = record
    items_out = []
    for asin, item_id in sorted(item_ids.items(), key=lambda pair: pair[1]):
        record = metadata.get(asin, {})
        items_out.append(
            {
                "item_id": item_id,
                "asin": asin,
                "title": record.get("title"),
                "brand": record.get("brand"),
                "categories": record.get("categories", []),
            }
        )
    output = Path(output_dir)
    atomic_write_text(output / "sequences.txt", "\n".join(lines) + "\n")
    atomic_write_text(output / "items.jsonl", "".join(json.dumps(item) + "\n" for item in items_out))
    return {
        "output": str(output),
        "users": len(lines),
        "items": len(item_ids),
        "interactions": sum(len(e) for e in events.values()),
        "items_without_metadata": sum(1 for asin in item_ids if asin not in metadata),
    }
