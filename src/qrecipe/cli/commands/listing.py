"""``qrecipe list``: the built-in recipes, and those under each ``--path`` root."""

from __future__ import annotations

import argparse
import json

from ...language import list_recipes
from ..common import ExitStatus, add_search_path


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "list",
        help="list the built-in recipes (and those under --path)",
        description="List the built-in recipes with their descriptions; with --path, also the "
        "recipes found under each DIR (snippets are not listed).",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_search_path(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitStatus:
    recipes = list_recipes(path=args.path)
    if args.format == "json":
        listing = [{"name": r.name, "root": r.root, "description": r.description} for r in recipes]
        print(json.dumps(listing, indent=2, ensure_ascii=False))
        return ExitStatus.OK
    width = max((len(r.name) for r in recipes), default=0)
    root = None
    for recipe in recipes:
        if recipe.root != root and (root is not None or recipe.root != "builtin"):
            print(f"\n{recipe.root}:" if root is not None else f"{recipe.root}:")
        root = recipe.root
        print(f"{recipe.name:<{width}}  {recipe.description}")
    return ExitStatus.OK
