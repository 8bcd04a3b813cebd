"""``qrecipe schema``: print a published JSON Schema or the editor catalog."""

from __future__ import annotations

import argparse
import sys

from ...schema import SCHEMA_FILES, schema_text
from ..common import ExitStatus


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "schema",
        help="print a published JSON Schema",
        description="Print a published JSON Schema: recipe (authoring), flat, or catalog "
        "(the SchemaStore-style catalog that maps file names to schemas).",
    )
    parser.add_argument(
        "name", choices=sorted(SCHEMA_FILES), metavar="NAME", help="recipe, flat or catalog"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitStatus:
    sys.stdout.write(schema_text(args.name))
    return ExitStatus.OK
