"""The ``qrecipe`` program: parse the arguments, run one subcommand, map failures to exits.

Each subcommand (see :mod:`qrecipe.cli.commands`) builds its work from the parsed arguments,
runs it, and hands the results to a reporter chosen with ``--format``; this module only
dispatches and turns the two kinds of failure into exit statuses: a problem with a recipe
(:class:`~qrecipe.language.RecipeError`, status 1, reported with its positions) and a mistake
in the command line (:class:`UsageError` or argparse's own, status 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..language import RecipeError
from .commands import COMMANDS
from .common import SEARCH_ROOTS_HELP, ExitStatus, Parser, UsageError, check_search_path

EPILOG = f"""\
{SEARCH_ROOTS_HELP}

exit status:
  0 valid / done, 1 a recipe is invalid or a file is out of date, 2 usage error (bad option,
  missing directory, unwritable output).

Run 'qrecipe COMMAND --help' for a command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line, every subcommand registered."""
    parser = Parser(
        prog="qrecipe",
        description="Validate, resolve and inspect model-quantization recipes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qrecipe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        check_search_path(getattr(args, "path", []))
        return int(args.run(args))
    except UsageError as error:
        print(f"qrecipe: error: {error}", file=sys.stderr)
        return ExitStatus.USAGE
    except RecipeError as error:
        for diagnostic in error.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return ExitStatus.PROBLEMS
    except BrokenPipeError:
        return ExitStatus.OK
