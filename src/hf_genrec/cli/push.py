"""`hf-genrec push`: publish a saved model directory (model or LoRA adapter, processor, semantic IDs, card) to the Hub."""

from __future__ import annotations

import argparse

from ..hub.model_cards import card_kinds


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser("push", help="upload a saved model directory to the Hugging Face Hub")
    push.add_argument("--model", required=True, help="saved model directory (config.json, model.safetensors, ...)")
    push.add_argument("--repo-id", required=True, help="target repository, e.g. org/tiger-beauty")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the logged-in token)")
    push.add_argument("--family", choices=card_kinds(), default=None,
                      help="model-card template when the directory has no README.md (default: from config.json)")
    push.add_argument("--refresh-card", action="store_true",
                      help="re-render README.md even if the directory already has an hf_genrec card")
    push.add_argument("--base-model", default=None, metavar="ORG/NAME",
                      help="for a LoRA adapter folder: the Hub id of the model it adapts (recorded in adapter_config.json)")
    push.add_argument("--commit-message", default=None, help="commit message")
    push.set_defaults(func=run_push)


def run_push(args: argparse.Namespace) -> dict:
    from huggingface_hub import HfApi

    from ..hub.push import DEFAULT_COMMIT_MESSAGE, push_model_dir

    url = push_model_dir(
        args.model,
        args.repo_id,
        token=args.token,
        private=args.private,
        commit_message=args.commit_message or DEFAULT_COMMIT_MESSAGE,
        family=args.family,
        refresh_card=args.refresh_card,
        base_model=args.base_model,
    )
    files = HfApi(token=args.token).list_repo_files(args.repo_id)  # what the Hub now holds
    return {"repo_id": args.repo_id, "url": url, "files": sorted(files)}
