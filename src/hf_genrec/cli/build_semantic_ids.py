"""`hf-genrec build-semantic-ids`: build a catalogue's semantic IDs (RQ-VAE, RQ-KMeans, OPQ or ColaRec GIDs) and save them."""

from __future__ import annotations

import argparse

from ..recipes.item_tokenizer_recipe import METHODS
from .output_claims import add_overwrite_argument, claim_command_output


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build-semantic-ids",
        help="embed item texts, train an RQ-VAE or fit RQ-KMeans, save the tokenizer and semantic_ids.json",
    )
    parser.add_argument("--dataset", default=None, help="dataset name (default: the recipe's, e.g. amazon-beauty)")
    parser.add_argument("--config", default=None, help="recipe YAML, e.g. training_args/rqvae-beauty.yaml")
    parser.add_argument("--output", required=True, help="directory for the tokenizer and semantic_ids.json")
    parser.add_argument("--method", choices=list(METHODS), default=None, help="overrides the recipe's method")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $HF_GENREC_DATA or ../shared/data)")
    parser.add_argument("--plot", default=None, help="PNG of codebook usage per level and the collision histogram "
                        "(an existing file is replaced only with --overwrite-output-dir)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--epochs", type=float, default=None, help="overrides num_train_epochs (RQ-VAE)")
    parser.add_argument("--seed", type=int, default=None, help="overrides the recipe's seed")
    parser.add_argument("--cache-dir", default=None, help="embedding cache directory (default: $HF_GENREC_CACHE)")
    parser.add_argument(
        "--encoder", default=None,
        help="item text encoder: sentence-transformers id/path, LLM checkpoint, or a LoRA adapter directory "
        "from finetune-item-encoder (overrides the recipe's encoder)",
    )
    add_overwrite_argument(parser)
    parser.set_defaults(func=run_build_semantic_ids)


def run_build_semantic_ids(args: argparse.Namespace) -> dict:
    from ..item_tokenizers.build import build_semantic_ids
    from ..item_tokenizers.plots import check_plot_path

    if args.plot is not None:
        check_plot_path(args.plot, overwrite=args.overwrite_output_dir)
    arguments = ("dataset", "method", "epochs", "seed", "encoder")
    with claim_command_output("build-semantic-ids", args, arguments):
        return build_semantic_ids(
            dataset_name=args.dataset,
            data_dir=args.data_dir,
            method=args.method,
            recipe_path=args.config,
            output_dir=args.output,
            device=args.device,
            plot_path=args.plot,
            num_train_epochs=args.epochs,
            seed=args.seed,
            embedding_cache_dir=args.cache_dir,
            encoder=args.encoder,
        ).summary
