"""The `hf-genrec` console command: sets the process's OpenMP wait policy, then runs hf_genrec's CLI.

Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, unless the caller set
it): on a few shared cores, spinning threads of one process starve the others (a SASRec training
step went from 0.3 s to 1.4 s beside three other busy processes).  The setting must precede
loading torch, so it lives here, outside the package: importing ``hf_genrec`` itself changes no
environment variable.  ``python -m hf_genrec_cli ...`` is the same command.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from hf_genrec.cli.main import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
