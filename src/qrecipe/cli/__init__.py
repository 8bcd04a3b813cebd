"""The ``qrecipe`` command line: one program, every tool a subcommand.

Exit statuses: 0 success, 1 a recipe problem (invalid, stale, different), 2 usage error.
The command line never imports torch; subcommands that need the runtime import it when run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line, every subcommand registered."""
    from .app import build_parser as build

    return build()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments == ["--version"]:
        # Answered before the subcommands (and the recipe language) are imported, exactly as
        # the parser's own --version answers.
        print(f"qrecipe {__version__}")
        raise SystemExit(0)
    from .app import main as run

    return run(arguments)


__all__ = ["build_parser", "main"]
