"""Layer 7, the command line: `iwavb COMMAND` or `python -m iwavb COMMAND`; `COMMAND --help` for each.

No traceback reaches a user: a bad option is argparse's one line (exit status 2), an expected failure (a bad
file, a setting that does not make a run, missing data, a run that would not fit) is one line naming what is
wrong (status 2), and anything else is one line that says it is a bug (status 1). `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from ..errors import IWAVBError, SettingError
from .parser import build_parser, option_flag

BUG = 1
USER_ERROR = 2
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from . import commands  # imported here: torch is slow to import, and --help needs none of it

        return commands.run(args)
    except (IWAVBError, ValueError) as err:
        _report(args, f"error: {_named(args, err)}")
        return USER_ERROR
    except KeyboardInterrupt:
        _report(args, "interrupted")
        return INTERRUPTED
    except Exception as err:  # the last resort: a bug, said in one line
        _report(args, f"error: unexpected {type(err).__name__}: {err} (a bug; --debug shows where)")
        return BUG


def _named(args: argparse.Namespace, err: Exception) -> str:
    """The message, led by the option it concerns when a setting given on the command line is at fault."""
    if isinstance(err, SettingError) and err.name in vars(args):
        flag = option_flag(err.name) if args.command == "train" else "--" + err.name.replace("_", "-")
        return f"{flag}: {err}"
    return str(err)


def _report(args: argparse.Namespace, line: str) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(line, file=sys.stderr)
