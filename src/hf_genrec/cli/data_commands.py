"""`hf-genrec data stats | import | build-amazon` and `hf-genrec baseline popularity`."""

from __future__ import annotations

import argparse

from ..data import load_rec_dataset


def add_dataset_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--dataset", required=required, help="dataset name, e.g. amazon-beauty or amazon-phones")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $HF_GENREC_DATA or ../shared/data)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="inspect datasets").add_subparsers(dest="data_command", required=True)
    stats = data.add_parser("stats", help="users, items, interactions, mean history length")
    add_dataset_arguments(stats)
    stats.set_defaults(func=run_stats)

    imports = data.add_parser("import", help="a dataset folder from your own interactions and items tables")
    imports.add_argument("--interactions", required=True, help="user, item, timestamp rows: .csv, .tsv, .jsonl or .parquet")
    imports.add_argument("--items", default=None, help="one row per item key with its text columns (same formats)")
    imports.add_argument("--output", required=True, help="new folder DIR/NAME; then use --data-dir DIR --dataset NAME")
    imports.add_argument("--user-column", default="user_id")
    imports.add_argument("--item-column", default="item_id")
    imports.add_argument("--timestamp-column", default="timestamp", help="numbers or ISO 8601 dates; ties keep file order")
    imports.add_argument("--no-timestamps", action="store_true", help="order each user's rows as they appear in the file")
    imports.add_argument("--item-key-column", default="item_id", help="key column of the items table (default item_id)")
    imports.add_argument("--text-columns", nargs="+", default=None,
                         help="item text columns (default: every other text column of the items table)")
    imports.add_argument("--min-count", type=int, default=5,
                         help="k-core: drop users and items with fewer interactions, repeatedly (default 5; 1 keeps all)")
    imports.set_defaults(func=run_import)

    build = data.add_parser("build-amazon", help="build a dataset folder from the raw Amazon 2014 files")
    build.add_argument("--category", required=True, help="Amazon 2014 category, e.g. Beauty")
    build.add_argument("--reviews", help="local reviews_<Category>_5.json(.gz); downloaded when omitted")
    build.add_argument("--meta", help="local meta_<Category>.json(.gz); downloaded when omitted")
    build.add_argument("--output", required=True, help="folder to write sequences.txt and items.jsonl into")
    build.set_defaults(func=run_build_amazon)

    baseline = subparsers.add_parser("baseline", help="reference baselines").add_subparsers(dest="baseline", required=True)
    popularity = baseline.add_parser("popularity", help="rank every item by training popularity")
    add_dataset_arguments(popularity)
    popularity.add_argument("--split", default="test", choices=["validation", "test"])
    popularity.add_argument("--max-history", type=int, default=20)
    popularity.set_defaults(func=run_popularity)


def run_stats(args: argparse.Namespace) -> dict:
    return load_rec_dataset(args.dataset, args.data_dir).stats()


def run_import(args: argparse.Namespace) -> dict:
    from ..data import RecDataset
    from ..data.dataset_folder import refuse_existing

    output = refuse_existing(args.output)  # before the reading, not after
    dataset = RecDataset.from_interactions(
        args.interactions, args.items, name=output.name, user_column=args.user_column, item_column=args.item_column,
        timestamp_column=None if args.no_timestamps else args.timestamp_column, item_key_column=args.item_key_column,
        text_columns=args.text_columns, min_count=args.min_count,
    )
    dataset.save(output)
    return {"output": str(output), "data_dir": str(output.parent), "dataset": output.name, **dataset.info["import"]}


def run_popularity(args: argparse.Namespace) -> dict:
    from ..evaluation.popularity import evaluate_popularity

    dataset = load_rec_dataset(args.dataset, args.data_dir)
    ks = (5, 10) if dataset.protocol == "leave-one-out" else (5, 10, 20)
    split = dataset.splits(args.max_history)[args.split]
    result = evaluate_popularity(dataset, split, ks)
    return {
        "model": "popularity",
        "dataset": dataset.name,
        "split": args.split,
        "users": len(split),
        **result,
        "protocol": dataset.describe_protocol(args.max_history),
    }


def run_build_amazon(args: argparse.Namespace) -> dict:
    from ..data.raw_amazon import build_amazon_dataset

    return build_amazon_dataset(args.category, args.output, reviews=args.reviews, meta=args.meta)
