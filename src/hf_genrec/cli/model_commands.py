"""`hf-genrec train`, `hf-genrec evaluate` and `hf-genrec recommend`."""

from __future__ import annotations

import argparse
import tempfile

from .data_commands import add_dataset_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a generative recommender from a recipe YAML")
    train.add_argument("--config", required=True, help="recipe YAML in training_args/")
    train.add_argument("--output-dir", help="overrides the recipe's output_dir")
    train.add_argument("--resume-from-checkpoint", nargs="?", const=True, default=None,
                       help="resume from the last checkpoint of this run in output_dir, or from the given one")
    train.add_argument("--overwrite-output-dir", action="store_true",
                       help="train into a non-empty output_dir that holds no run of this recipe (files of the same "
                            "names are replaced; nothing else is deleted)")
    train.add_argument("overrides", nargs="*", help="key=value recipe overrides, e.g. num_train_epochs=1")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("evaluate", help="score a saved model on a split (full-catalogue ranking)")
    evaluate.add_argument("--model", required=True, help="saved model folder")
    add_dataset_arguments(evaluate, required=False)
    evaluate.add_argument("--split", default="test", choices=["validation", "test"])
    evaluate.add_argument("--num-beams", type=int, default=None, help="default: the recipe's generation_num_beams, else twice the largest cut-off (at least 20)")
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--max-users", type=int, default=None, help="score only the first N users (no record is kept)")
    evaluate.add_argument("--allow-catalogue-mismatch", action="store_true",
                          help="score a model whose catalogue is not the dataset's (the record says so)")
    evaluate.add_argument("--no-record", action="store_true", help="print the metrics only; add no record to evaluations.json")
    evaluate.add_argument("--predictions", default=None, metavar="FILE.jsonl",
                          help="also write each scored user's top-K: one JSON line {user_id, history, exclude, items, scores}")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --predictions file")
    evaluate.set_defaults(func=run_evaluate)

    recommend = subparsers.add_parser("recommend", help="top-K items for one history, or for every line of a JSONL file")
    recommend.add_argument("--model", required=True, help="saved model folder (or adapter folder)")
    source = recommend.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", nargs="+",
                        help="items, oldest first: their original keys when the model carries them (imported data), else item ids")
    source.add_argument("--input", metavar="FILE.jsonl",
                        help='one user a line: {"history": [...], "user_id": optional, "exclude": optional}')
    recommend.add_argument("--ids", action="store_true", help="read --history as internal item ids even when the model carries keys")
    recommend.add_argument("--output", metavar="OUT.jsonl", help="with --input: the input lines plus items, scores (and titles)")
    recommend.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    recommend.add_argument("--user-id", type=int, default=None)
    recommend.add_argument("--user-key", default=None, help="original user key (looked up in the dataset's users.jsonl)")
    recommend.add_argument("--top-k", type=int, default=10)
    recommend.add_argument("--num-beams", type=int, default=None, help="default: the recipe's generation_num_beams, else twice its largest metric_ks cut-off (at least 20)")
    recommend.add_argument("--batch-size", type=int, default=256, help="with --input: users ranked together")
    recommend.add_argument("--no-progress", action="store_true", help="with --input: no progress bar on stderr")
    add_dataset_arguments(recommend, required=False)
    recommend.set_defaults(func=run_recommend)


def run_train(args: argparse.Namespace) -> dict:
    from ..training.pipeline import train_from_recipe
    from ..training.recipe_loading import parse_recipe

    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir is not None else [])
    overrides += ["overwrite_output_dir=true"] if args.overwrite_output_dir else []
    return train_from_recipe(parse_recipe(args.config, overrides), resume_from_checkpoint=args.resume_from_checkpoint)


def run_evaluate(args: argparse.Namespace) -> dict:
    from ..inference.saved_models import evaluate_saved_model

    with tempfile.TemporaryDirectory() as scratch:
        return evaluate_saved_model(
            args.model, split=args.split, dataset=args.dataset, data_dir=args.data_dir, num_beams=args.num_beams,
            batch_size=args.batch_size, max_users=args.max_users, scratch_dir=scratch,
            predictions=args.predictions, overwrite=args.overwrite,
            allow_catalogue_mismatch=args.allow_catalogue_mismatch, save_record=not args.no_record,
        )


def run_recommend(args: argparse.Namespace) -> dict:
    from ..errors import InvalidInputError
    from ..inference.batch_predictions import recommend_file
    from ..inference.saved_models import recommend_with_saved_model

    if args.input is not None:
        if args.output is None:
            raise InvalidInputError("--input needs --output (the file the ranked lines go to)")
        if args.user_id is not None:
            raise InvalidInputError("--user-id goes with --history; with --input each line carries its user_id")
        return recommend_file(
            args.model, args.input, args.output, top_k=args.top_k, num_beams=args.num_beams, batch_size=args.batch_size,
            overwrite=args.overwrite, dataset=args.dataset, data_dir=args.data_dir, show_progress=not args.no_progress,
        )
    if args.output is not None:
        raise InvalidInputError("--output goes with --input (a file of histories)")
    return recommend_with_saved_model(
        args.model, args.history, top_k=args.top_k, num_beams=args.num_beams, user_id=args.user_id,
        dataset=args.dataset, data_dir=args.data_dir, by_key=False if args.ids else None, user_key=args.user_key,
    )
