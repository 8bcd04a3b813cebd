"""``qrecipe diff``: what changes between two recipes, and with ``--model`` in that model."""

from __future__ import annotations

import argparse
import json

from ...review import diff, read_recipe
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
        "diff",
        help="show what changes between two recipes (with --model, per quantizer group)",
        description="Compare two recipes (paths, names or flat JSON files) after resolution: "
        "metadata and algorithm as JSON-pointer differences, quant_cfg entries aligned by "
        "what they select. With --model, also the quantizers whose format changes, grouped "
        "by the part of the model they belong to.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status 0 when both resolve to the same recipe (same fingerprint), 1 when "
        "they differ.\n\nexamples:\n"
        "  qrecipe diff general/ptq/nvfp4_default-kv_fp8 general/ptq/fp8_default-kv_fp8\n"
        "  qrecipe diff old.flat.json new.yaml --model path/to/Llama-3-8B",
    )
    parser.add_argument("before", metavar="A", help="the recipe before")
    parser.add_argument("after", metavar="B", help="the recipe after")
    add_model(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_search_path(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitStatus:
    with notices() as found:
        before = read_recipe(args.before, path=args.path)
        after = read_recipe(args.after, path=args.path)
    print_notices(unique(found))
    model = model_from(args.model) if args.model else None
    result = diff(before, after, model)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(result.lines()))
    return ExitStatus.OK if result.same else ExitStatus.PROBLEMS
