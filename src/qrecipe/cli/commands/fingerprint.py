"""``qrecipe fingerprint``: the fingerprint of a recipe or of a flat JSON file."""

from __future__ import annotations

import argparse

from ...language import fingerprint, is_flat_file, load_flat, resolve
from ..common import ExitStatus, add_search_path, notices, print_notices


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "fingerprint",
        help="print the fingerprint of a recipe, flat JSON file or checkpoint",
        description="Print the fingerprint of a recipe (resolved first), of a flat JSON file, or "
        "of the recipe a checkpoint written by 'qrecipe quantize' was made with.",
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        help="recipe name or path, a flat *.json file, or a checkpoint directory",
    )
    add_search_path(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitStatus:
    if is_flat_file(args.file):
        flat = load_flat(args.file)
    else:
        with notices() as found:
            flat = resolve(args.file, path=args.path)
        print_notices(found)
    print(fingerprint(flat))
    return ExitStatus.OK
