"""The ``qrecipe`` command line.

Exit codes: 0 success, 1 invalid input (a recipe problem), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..language import (
    Diagnostic,
    RecipeDeprecationWarning,
    RecipeError,
    canonical_bytes,
    fingerprint,
    is_flat_file,
    list_recipes,
    load_flat,
    pretty_json,
    resolve,
    validate,
)
from ..schema import SCHEMA_FILES, schema_text

T = TypeVar("T")

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

_EPILOG = """\
search roots:
  Names are looked up in the built-in library, then each --path DIR, then the directories
  in $QRECIPE_PATH, then the current directory. A snippet's imports are looked up first in
  the root that holds it.

exit status:
  0 valid / done, 1 a recipe is invalid, 2 usage error (bad option, unreadable output).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--path",
        metavar="DIR",
        action="append",
        default=[],
        help="extra search root for recipe and snippet names (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qrecipe",
        description="Validate, resolve and inspect model-quantization recipes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qrecipe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    p = commands.add_parser(
        "validate",
        help="check recipes, snippets and flat JSON files",
        description="Check recipe and snippet YAML files (imports resolved) and flat *.json "
        "files (schema and fingerprint). Every problem is reported with file:line:column.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  qrecipe validate my_recipe.yaml configs/*.yaml\n"
        "  qrecipe validate --format github recipes/*.yaml",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recipe, snippet or flat JSON file")
    p.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text (default), json (machine-readable), github (workflow annotations)",
    )
    _add_path(p)

    p = commands.add_parser(
        "resolve",
        help="print the flat canonical JSON of a recipe",
        description="Resolve a recipe (built-in name or path) into its flat canonical JSON.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  qrecipe resolve general/ptq/fp8_default-kv_fp8\n"
        "  qrecipe resolve my_recipe.yaml -o my_recipe.flat.json",
    )
    p.add_argument("recipe", metavar="RECIPE", help="built-in name or path to a recipe")
    p.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    p.add_argument("--canonical", action="store_true", help="RFC 8785 bytes (no whitespace)")
    p.add_argument(
        "--provenance",
        action="store_true",
        help="record where each quant_cfg entry came from (not part of the fingerprint)",
    )
    _add_path(p)

    p = commands.add_parser(
        "list",
        help="list the built-in recipes",
        description="List the built-in recipes with their descriptions.",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    _add_path(p)

    p = commands.add_parser(
        "schema",
        help="print a published JSON Schema",
        description="Print a published JSON Schema: recipe (authoring), flat, or catalog.",
    )
    p.add_argument(
        "name", choices=sorted(SCHEMA_FILES), metavar="NAME", help="recipe, flat or catalog"
    )
    _add_path(p)

    p = commands.add_parser(
        "fingerprint",
        help="print the fingerprint of a recipe or flat JSON file",
        description="Print the fingerprint of a recipe (resolved first) or of a flat JSON file.",
    )
    p.add_argument("file", metavar="FILE", help="recipe name or path, or a flat *.json file")
    _add_path(p)
    return parser


def _report(diagnostics: Sequence[Diagnostic], fmt: str, target: str) -> None:
    for d in diagnostics:
        if fmt == "github":
            props = [f"file={d.file or target}"]
            if d.line:
                props.append(f"line={d.line}")
            if d.column:
                props.append(f"col={d.column}")
            message = d.message + (f" ({d.hint})" if d.hint else "")
            print(f"::error {','.join(props)}::{message}")
        else:
            print(d.format(), file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    results = []
    failed = False
    for file in args.files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecipeDeprecationWarning)
            diagnostics = validate(file, path=args.path)
        for warning in caught:
            print(f"{file}: notice: {warning.message}", file=sys.stderr)
        failed = failed or bool(diagnostics)
        results.append(
            {"file": file, "valid": not diagnostics, "errors": [d.to_dict() for d in diagnostics]}
        )
        if args.format != "json":
            _report(diagnostics, args.format, file)
            if not diagnostics and args.format == "text":
                print(f"{file}: ok")
    if args.format == "json":
        print(json.dumps({"valid": not failed, "results": results}, indent=2, ensure_ascii=False))
    elif failed and args.format == "text":
        count = sum(len(r["errors"]) for r in results)
        bad = sum(1 for r in results if not r["valid"])
        print(f"{count} problem(s) in {bad} of {len(results)} file(s)", file=sys.stderr)
    return EXIT_INVALID if failed else EXIT_OK


def _write(data: bytes, output: str | None) -> int:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return EXIT_OK
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        print(f"qrecipe: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _with_notices(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecipeDeprecationWarning)
        result = function(*args, **kwargs)
    for warning in caught:
        print(f"notice: {warning.message}", file=sys.stderr)
    return result


def _resolve(args: argparse.Namespace) -> int:
    flat = _with_notices(resolve, args.recipe, path=args.path, provenance=args.provenance)
    data = canonical_bytes(flat) if args.canonical else pretty_json(flat).encode()
    return _write(data, args.output)


def _list(args: argparse.Namespace) -> int:
    recipes = list_recipes()
    if args.format == "json":
        print(
            json.dumps([{"name": r.name, "description": r.description} for r in recipes], indent=2)
        )
        return EXIT_OK
    width = max((len(r.name) for r in recipes), default=0)
    for recipe in recipes:
        print(f"{recipe.name:<{width}}  {recipe.description}")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text(args.name))
    return EXIT_OK


def _fingerprint(args: argparse.Namespace) -> int:
    if is_flat_file(args.file):
        flat = load_flat(args.file)
    else:
        flat = _with_notices(resolve, args.file, path=args.path)
    print(fingerprint(flat))
    return EXIT_OK


_COMMANDS = {
    "validate": _validate,
    "resolve": _resolve,
    "list": _list,
    "schema": _schema,
    "fingerprint": _fingerprint,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    for root in args.path:
        if not os.path.isdir(root):
            print(f"qrecipe: error: --path {root!r} is not a directory", file=sys.stderr)
            return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except RecipeError as error:
        for diagnostic in error.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
