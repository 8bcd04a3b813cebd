"""``qrecipe resolve``: print or write the flat canonical JSON of a recipe."""

from __future__ import annotations

import argparse

from ...language import canonical_bytes, pretty_json, resolve
from ..common import ExitStatus, add_search_path, notices, print_notices
from ..output import write_output


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "resolve",
        help="print the flat canonical JSON of a recipe",
        description="Resolve a recipe (built-in name or path) into its flat canonical JSON.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  qrecipe resolve general/ptq/fp8_default-kv_fp8\n"
        "  qrecipe resolve my_recipe.yaml -o my_recipe.flat.json",
    )
    parser.add_argument("recipe", metavar="RECIPE", help="built-in name or path to a recipe")
    parser.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    parser.add_argument("--canonical", action="store_true", help="RFC 8785 bytes (no whitespace)")
    parser.add_argument(
        "--provenance",
        action="store_true",
        help="record where each quant_cfg entry came from (not part of the fingerprint)",
    )
    add_search_path(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitStatus:
    with notices() as found:
        flat = resolve(args.recipe, path=args.path, provenance=args.provenance)
    print_notices(found)
    data = canonical_bytes(flat) if args.canonical else pretty_json(flat).encode()
    write_output(data, args.output)
    return ExitStatus.OK
