"""Export amazon-beauty as a shop would hold it: ``interactions.csv`` and ``items.csv`` with its own keys.

``interactions.csv``: ``user_id,item_id,timestamp`` with string user keys (``user-00001``), item keys
= ASINs and, since ``sequences.txt`` has no timestamps, each interaction's position in its user's
sequence as the timestamp.  ``items.csv``: ``item_id,title,brand,categories`` (ASIN, text; the
category paths flattened to one comma-separated list).  Importing both with
``hf-genrec data import`` must give back amazon-beauty: the check of issue #20 (BENCHMARKS.md).

    python bench/export_beauty_tables.py --output /tmp/beauty-tables [--users N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def flatten(value) -> str:
    """Nested category paths as unique labels in order, comma-separated."""
    labels: list[str] = []
    stack = [value]
    while stack:
        head = stack.pop(0)
        if isinstance(head, (list, tuple)):
            stack[:0] = list(head)
        elif head is not None and str(head).strip() and str(head).strip() not in labels:
            labels.append(str(head).strip())
    return ", ".join(labels)


def export(data_dir: Path, output: Path, users: int | None = None) -> dict:
    source = data_dir / "amazon-beauty"
    items = {}
    with open(source / "items.jsonl", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            items[item["item_id"]] = item
    output.mkdir(parents=True, exist_ok=True)
    used: dict[int, None] = {}
    rows = 0
    with open(source / "sequences.txt", encoding="utf-8") as handle, open(output / "interactions.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "item_id", "timestamp"])
        for number, line in enumerate(handle):
            if users is not None and number >= users:
                break
            user, *sequence = line.split()
            for position, item in enumerate(map(int, sequence)):
                writer.writerow([f"user-{int(user):05d}", items[item]["asin"], position])
                used.setdefault(item, None)
                rows += 1
    with open(output / "items.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["item_id", "title", "brand", "categories"])
        for item_id in sorted(used):
            item = items[item_id]
            writer.writerow([item["asin"], item.get("title") or "", item.get("brand") or "", flatten(item.get("categories"))])
    return {"output": str(output), "interactions": rows, "items": len(used)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--users", type=int, default=None, help="only the first N users (default: all)")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    print(json.dumps(export(args.data_dir, args.output, args.users)))


if __name__ == "__main__":
    main()
