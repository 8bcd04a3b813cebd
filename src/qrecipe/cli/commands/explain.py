"""``qrecipe explain``: every quantizer of a model, its format and the entry that decided it."""

from __future__ import annotations

import argparse
import json

from ...review import Explanation, explain, read_recipe
from ..common import (
    ExitStatus,
    add_model,
    add_search_path,
    model_from,
    notices,
    print_notices,
    unique,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "explain",
        help="show each quantizer of a model, its format and the entry that decided it",
        description="Show every quantizer a recipe gives a model, as apply would place it: "
        "its format (or off) and the entry that decided it, as file:line in the recipe's "
        "sources. Quantizers of repeated layers with the same format and entry are folded "
        "into one row, e.g. model.layers.{0..31}.mlp.gate_proj.weight_quantizer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  qrecipe explain general/ptq/fp8_qkvo-nvfp4_mlp --model path/to/Llama-3-8B\n"
        "  qrecipe explain my_recipe.yaml --model config.json --format json",
    )
    parser.add_argument("recipe", metavar="RECIPE", help="recipe: path or name, or flat JSON")
    add_model(parser, required=True)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--no-fold", action="store_true", help="one row per quantizer, repeated layers unfolded"
    )
    add_search_path(parser)
    parser.set_defaults(run=run)


def table(explanation: Explanation) -> list[str]:
    header = ("quantizer", "format", "decided by")
    rows = [header] + [(row.quantizer, row.format, row.decided_text) for row in explanation.rows]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [explanation.heading(), ""]
    for number, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())
        if number == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * len(header[2])}")
    return lines


def run(args: argparse.Namespace) -> ExitStatus:
    with notices() as found:
        recipe = read_recipe(args.recipe, path=args.path)
    print_notices(unique(found))
    explanation = explain(recipe, model_from(args.model), folded=not args.no_fold)
    if args.format == "json":
        print(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(table(explanation)))
    return ExitStatus.OK
