"""What every subcommand shares: exit statuses, the argument parser, search roots, notices."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from enum import IntEnum
from typing import NoReturn

from ..language import RecipeDeprecationWarning
from ..review import ModelLoadError, ModelSkeleton, load_model

SEARCH_ROOTS_HELP = """\
search roots:
  Names are looked up in the built-in library, then each --path DIR, then the directories
  in $QRECIPE_PATH, then the current directory. A snippet's imports are looked up first in
  the root that holds it."""


class ExitStatus(IntEnum):
    """The exit statuses of every subcommand, like ``diff`` and linters."""

    OK = 0
    PROBLEMS = 1  # the input is invalid, stale or differs: the user's recipe needs attention
    USAGE = 2  # the command itself was wrong: bad option, missing directory, unwritable output


class UsageError(Exception):
    """A mistake in how the command was called; reported in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but every usage error exits with :attr:`ExitStatus.USAGE` (argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitStatus.USAGE, f"{self.prog}: error: {message}\n")


def add_search_path(parser: argparse.ArgumentParser) -> None:
    """``--path DIR`` (repeatable): an extra root for recipe and snippet names."""
    parser.add_argument(
        "--path",
        metavar="DIR",
        action="append",
        default=[],
        help="extra search root for recipe and snippet names (repeatable)",
    )


def add_model(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--model X``: the model to review against (a model directory or its config.json)."""
    parser.add_argument(
        "--model",
        metavar="MODEL",
        required=required,
        help="a Hugging Face model directory or a config.json; built without weights",
    )


def model_from(source: str) -> ModelSkeleton:
    """The model ``--model`` names; a configuration that cannot be built is a usage error."""
    try:
        return load_model(source)
    except ModelLoadError as error:
        raise UsageError(f"--model {error}") from None


def check_search_path(roots: list[str]) -> None:
    """Refuse a ``--path`` that is not a directory before any work starts."""
    for root in roots:
        if not os.path.isdir(root):
            raise UsageError(f"--path {root!r} is not a directory")


@contextlib.contextmanager
def notices() -> Iterator[list[str]]:
    """Collect deprecation notices (renamed recipes and snippets) instead of warning twice."""
    collected: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecipeDeprecationWarning)
        yield collected
    collected += [
        str(w.message) for w in caught if issubclass(w.category, RecipeDeprecationWarning)
    ]


def unique(messages: list[str]) -> list[str]:
    """``messages`` without repeats, in order."""
    return list(dict.fromkeys(messages))


def print_notices(messages: list[str], prefix: str = "") -> None:
    for message in messages:
        print(f"{prefix}notice: {message}", file=sys.stderr)
