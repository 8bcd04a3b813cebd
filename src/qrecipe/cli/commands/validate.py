"""``qrecipe validate``: check recipes, snippets and flat JSON files, every problem at once."""

from __future__ import annotations

import argparse

from ...language import validate
from ..common import ExitStatus, add_search_path, notices
from ..reporting import FORMAT_HELP, FORMATS, Result, make_reporter
from ..targets import STDIN, STDIN_NAME, expand, stdin_file


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="check recipes, snippets and flat JSON files",
        description="Check recipe and snippet YAML files (imports resolved) and flat *.json "
        "files (schema and fingerprint). Every problem is reported with file:line:column.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="A directory stands for every *.yaml, *.yml and *.flat.json below it; - reads one "
        "document from standard input.\n\n"
        "examples:\n  qrecipe validate my_recipe.yaml configs/*.yaml\n"
        "  qrecipe validate recipes/\n"
        "  cat my_recipe.yaml | qrecipe validate -\n"
        "  qrecipe validate --format github recipes/*.yaml",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="recipe, snippet, flat JSON, directory, or -"
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help=FORMAT_HELP)
    add_search_path(parser)
    parser.set_defaults(run=run)


def check(file: str, roots: list[str]) -> Result:
    """Validate one file (``-``: standard input) into a :class:`Result`, notices included."""
    if file == STDIN:
        with stdin_file() as (temporary, rename):
            result = check(temporary, roots)
        return Result(STDIN_NAME, [rename(d) for d in result.diagnostics], notices=result.notices)
    with notices() as found:
        diagnostics = validate(file, path=roots)
    return Result(file, diagnostics, notices=found)


def run(args: argparse.Namespace) -> ExitStatus:
    reporter = make_reporter(args.format)
    results = []
    for file in expand(args.files):
        result = check(file, args.path)
        reporter.result(result)
        results.append(result)
    problems = sum(len(r.diagnostics) for r in results)
    failed = sum(1 for r in results if not r.ok)
    reporter.finish(results, f"{problems} problem(s) in {failed} of {len(results)} file(s)")
    return ExitStatus.PROBLEMS if failed else ExitStatus.OK
