"""What every Sparwatt command shares: exit codes, human or JSON output, clean failures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from sparwatt.errors import ConfigError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def emit(args: argparse.Namespace, data: Any, human: str) -> None:
    """Print the human text, or the data as JSON when the command got --json."""
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else human)


def run(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    failures: tuple[type[BaseException], ...] = (),
) -> int:
    """Parse, run the chosen command and turn expected errors into one line and an exit code."""
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(command(args))
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return EXIT_USAGE
    except failures as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return EXIT_FAIL
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away; say nothing more and keep Python from
        # complaining while it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL
