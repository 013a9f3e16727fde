"""Layer 7, the command line: `iwavb COMMAND` or `python -m iwavb COMMAND`; `COMMAND --help` for each.

Every expected failure ends as one line on stderr and exit status 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys
import traceback

from ..errors import IWAVBError
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from . import commands  # imported here: torch is slow to import, and --help needs none of it

        return commands.run(args)
    except (IWAVBError, ValueError) as err:
        if args.debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
