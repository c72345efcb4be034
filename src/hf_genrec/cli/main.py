"""`hf-genrec` command line: one subcommand module each; results as JSON on the last stdout line."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
from typing import Any, Sequence

from ..errors import HfGenRecError

# Each module defines `add_parser(subparsers)`; the parser it adds sets `func(args) -> dict | None`.
COMMAND_MODULES = [
    "hf_genrec.cli.data_commands",
    "hf_genrec.cli.model_commands",
    "hf_genrec.cli.push",
    "hf_genrec.cli.build_semantic_ids",
    "hf_genrec.cli.finetune_item_encoder",
]


def print_result(result: Any) -> None:
    """Print a result as one JSON line: the last line of stdout is always machine-readable (strict JSON:
    a non-finite number, e.g. a diverged training loss, is written as null)."""
    sys.stdout.write(json.dumps(_finite(result), default=_jsonable, allow_nan=False) + "\n")
    sys.stdout.flush()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def error_line(exc: BaseException) -> str:
    """``hf-genrec: error: <message>`` on one line, whatever the message holds (library messages span lines)."""
    return "hf-genrec: error: " + " ".join(str(exc).split())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-genrec", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level for stderr (default: INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.func(args)
    except HfGenRecError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    if result is not None and int(os.environ.get("RANK", "0")) == 0:  # one JSON line, from the main process
        print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
