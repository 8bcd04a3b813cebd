"""``qrecipe validate``: check recipes, snippets and flat JSON files, every problem at once."""

from __future__ import annotations

import argparse

from ...language import validate
from ..common import ExitStatus, add_search_path, notices
from ..reporting import FORMAT_HELP, FORMATS, Result, make_reporter


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="check recipes, snippets and flat JSON files",
        description="Check recipe and snippet YAML files (imports resolved) and flat *.json "
        "files (schema and fingerprint). Every problem is reported with file:line:column.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  qrecipe validate my_recipe.yaml configs/*.yaml\n"
        "  qrecipe validate --format github recipes/*.yaml",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="recipe, snippet or flat JSON")
    parser.add_argument("--format", choices=FORMATS, default="text", help=FORMAT_HELP)
    add_search_path(parser)
    parser.set_defaults(run=run)


def check(file: str, roots: list[str]) -> Result:
    """Validate one file into a :class:`Result`, renamed-recipe notices included."""
    with notices() as found:
        diagnostics = validate(file, path=roots)
    return Result(file, diagnostics, notices=found)


def run(args: argparse.Namespace) -> ExitStatus:
    reporter = make_reporter(args.format)
    results = []
    for file in args.files:
        result = check(file, args.path)
        reporter.result(result)
        results.append(result)
    problems = sum(len(r.diagnostics) for r in results)
    failed = sum(1 for r in results if not r.ok)
    reporter.finish(results, f"{problems} problem(s) in {failed} of {len(results)} file(s)")
    return ExitStatus.PROBLEMS if failed else ExitStatus.OK
