"""``qrecipe list``: the built-in recipes, and those under each ``--path`` root."""

from __future__ import annotations

import argparse
import json

from ...language import list_recipes
from ..common import ExitStatus, add_search_path

LINE_WIDTH = 100
"""Descriptions wrap so that lines stay within this many characters."""
MIN_DESCRIPTION_WIDTH = 40


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
    room = max(LINE_WIDTH - width - 2, MIN_DESCRIPTION_WIDTH)
    root = None
    for recipe in recipes:
        if recipe.root != root and (root is not None or recipe.root != "builtin"):
            print(f"\n{recipe.root}:" if root is not None else f"{recipe.root}:")
        root = recipe.root
        lines = wrap(recipe.description, room) or [""]
        print(f"{recipe.name:<{width}}  {lines[0]}".rstrip())
        for line in lines[1:]:
            print(f"{'':<{width}}  {line}")
    return ExitStatus.OK


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces only (a longer word
    stands alone on its line); the JavaScript command line wraps the same way."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines
