"""`hf-genrec finetune-item-encoder`: LoRA-adapt the item text encoder on next-item pairs, save the adapter."""

from __future__ import annotations

import argparse

from .output_claims import add_overwrite_argument, claim_command_output


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune-item-encoder",
        help="LoRA-adapt the item text encoder on pairs of items that follow each other in training histories",
    )
    parser.add_argument("--dataset", default=None, help="dataset name (default: the recipe's, e.g. amazon-beauty)")
    parser.add_argument("--config", default=None, help="recipe YAML, e.g. training_args/item-encoder-lora-beauty.yaml")
    parser.add_argument("--output", required=True, help="directory for the adapter (use it as build-semantic-ids --encoder)")
    parser.add_argument(
        "--base-model", default=None,
        help="sentence-transformers model or plain transformers (LLM) checkpoint, path or Hub id (default: bundled MiniLM)",
    )
    parser.add_argument(
        "--base-model-id", default=None,
        help="Hub id recorded as the adapter's base (default: sentence-transformers/all-MiniLM-L6-v2 for the bundled "
        "MiniLM, the value of --base-model when it is a Hub id; required for other local paths)",
    )
    parser.add_argument("--pooling", choices=["mean", "lasttoken"], default=None, help="plain transformers bases only")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $HF_GENREC_DATA or ../shared/data)")
    parser.add_argument("--max-steps", type=int, default=None, help="overrides the recipe's max_steps")
    parser.add_argument("--eval-pairs", type=int, default=None, help="held-out pairs for the before/after measure")
    parser.add_argument("--seed", type=int, default=None, help="overrides the recipe's seed")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: CUDA when available")
    add_overwrite_argument(parser)
    parser.set_defaults(func=run_finetune_item_encoder)


def run_finetune_item_encoder(args: argparse.Namespace) -> dict:
    from ..item_encoders.lora_training import train_item_encoder_lora
    from ..recipes.item_encoder_recipe import load_item_encoder_recipe

    recipe, training_args = load_item_encoder_recipe(
        args.config,
        dataset=args.dataset,
        data_dir=args.data_dir,
        base_model=args.base_model,
        base_model_id=args.base_model_id,
        pooling=args.pooling,
        max_steps=args.max_steps,
        eval_pairs=args.eval_pairs,
        seed=args.seed,
        use_cpu=True if args.device == "cpu" else None,
        output_dir=args.output,
    )
    arguments = ("dataset", "base_model", "base_model_id", "pooling", "max_steps", "eval_pairs", "seed")
    with claim_command_output("finetune-item-encoder", args, arguments):
        _, summary = train_item_encoder_lora(recipe, training_args, args.output)
    return summary
