"""The output folder of a command that is not a training run (`build-semantic-ids`, `finetune-item-encoder`).

The same rules as a training's folder (``hf_genrec.output_folders``): absent, empty, or written by
the same command with the same arguments and recipe file, unless ``--overwrite-output-dir``; locked
while the command writes, so a user's files and a concurrent command's are never replaced.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Sequence

from ..output_folders import RunMarker, claim_output_folder, file_digest


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite-output-dir", action="store_true",
                        help="write into a non-empty --output that holds no output of this command with these arguments "
                             "(files of the same names are replaced; the others stay)")


def claim_command_output(command: str, args: argparse.Namespace, argument_names: Sequence[str]) -> AbstractContextManager[Path]:
    """Check and lock ``args.output`` for ``command``; its marker is the command, ``argument_names``' values and the recipe file."""
    marker = RunMarker({
        "command": command,
        "arguments": {name: getattr(args, name) for name in argument_names},
        "recipe_file": file_digest(args.config, "recipe") if getattr(args, "config", None) else None,
    })
    return claim_output_folder(args.output, marker, overwrite=args.overwrite_output_dir)


__all__ = ["add_overwrite_argument", "claim_command_output"]
