"""``qrecipe check-flat``: committed ``*.flat.json`` files still equal what their sources
resolve to (the ``qrecipe-check-flat`` pre-commit hook)."""

from __future__ import annotations

import argparse
import subprocess

from ..common import ExitStatus, UsageError, add_search_path
from ..flatcheck import FLAT_SUFFIX, check_flat_file, tracked_flat_files
from ..reporting import FORMAT_HELP, FORMATS, make_reporter


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check-flat",
        help="check that committed *.flat.json files are up to date",
        description="Check that committed *.flat.json files equal what their source recipes "
        "resolve to today. A flat file's source is name.yaml, name.yml or the directory "
        "recipe name/ next to it, else the provenance.recipe it records.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Without FILE arguments, every *.flat.json tracked by git is checked.\n\n"
        "examples:\n  qrecipe check-flat\n"
        "  qrecipe check-flat recipes/fp8.flat.json --path recipes",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="flat recipe (*.flat.json)")
    parser.add_argument("--format", choices=FORMATS, default="text", help=FORMAT_HELP)
    add_search_path(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitStatus:
    files = [name for name in args.files if name.endswith(FLAT_SUFFIX)]
    if not args.files:
        try:
            files = tracked_flat_files()
        except (OSError, subprocess.CalledProcessError):
            message = "not in a git repository; name the *.flat.json files to check"
            raise UsageError(message) from None
    reporter = make_reporter(args.format, show_ok=False)
    results = []
    for flat_file in files:
        result = check_flat_file(flat_file, args.path)
        reporter.result(result)
        results.append(result)
    stale = sum(1 for r in results if not r.ok)
    reporter.finish(results, f"{stale} of {len(results)} flat recipe file(s) need attention")
    return ExitStatus.PROBLEMS if stale else ExitStatus.OK
