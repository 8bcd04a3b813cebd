"""What a checking command is asked to check: files, directories, and ``-`` for stdin.

A directory stands for every recipe, snippet (``*.yaml``, ``*.yml``) and flat file
(``*.flat.json``) below it, in path order; a directory recipe below it (one holding a
``quantize.yml``) is one target, not its parts. ``-`` is a recipe, snippet or flat document read
from standard input, named ``<stdin>`` in messages; imports in it are looked up as from a file
in the working directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..language import Diagnostic

STDIN = "-"
STDIN_NAME = "<stdin>"
YAML_SUFFIXES = (".yaml", ".yml")
FLAT_SUFFIX = ".flat.json"
DIRECTORY_RECIPE_FILES = ("quantize.yml", "quantize.yaml")


def _kind(path: Path) -> str | None:
    """``"file"``, ``"dir"`` or None, whatever the path (a name too long, a link loop...)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else None


def is_directory_recipe(path: Path) -> bool:
    return any(_kind(path / name) == "file" for name in DIRECTORY_RECIPE_FILES)


def expand(arguments: list[str]) -> list[str]:
    """The targets the arguments name, directories expanded, in the order given."""
    targets: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if argument == STDIN or _kind(path) != "dir" or is_directory_recipe(path):
            targets.append(argument)
            continue
        targets += _below(path, argument)
    return targets


def _below(directory: Path, shown: str) -> list[str]:
    found: list[str] = []
    recipes: list[str] = []
    # Links count as what they lead to; links to directories are not followed below them.
    # A directory that cannot be listed, or vanishes while it is (as under /proc), holds nothing.
    for folder, directories, files in os.walk(directory):
        for name in (*directories, *files):
            _add(Path(folder) / name, directory, found, recipes)
    # The parts of a directory recipe are checked through the recipe itself.
    kept = [r for r in found if not any(r.startswith(f"{d}/") for d in recipes)]
    return [_join(shown, r) for r in sorted([*kept, *recipes])]


def _add(file: Path, directory: Path, found: list[str], recipes: list[str]) -> None:
    """Count ``file`` (below ``directory``) as a recipe directory or a file to check."""
    relative = file.relative_to(directory).as_posix()
    kind = _kind(file)
    if kind == "dir" and is_directory_recipe(file):
        recipes.append(relative)
    elif kind == "file" and file.name.endswith((*YAML_SUFFIXES, FLAT_SUFFIX)):
        found.append(relative)


def _join(directory: str, relative: str) -> str:
    base = directory.rstrip("/")
    if not base and directory.startswith("/"):
        return f"/{relative}"
    return relative if base in ("", ".") else f"{base}/{relative}"


@contextlib.contextmanager
def stdin_file() -> Iterator[tuple[str, Callable[[Diagnostic], Diagnostic]]]:
    """Standard input as a temporary file, and a function naming it ``<stdin>`` in a diagnostic."""
    text = sys.stdin.read()
    suffix = FLAT_SUFFIX if _is_flat(text) else ".yaml"
    with tempfile.TemporaryDirectory(prefix="qrecipe-stdin-") as folder:
        file = os.path.join(folder, f"stdin{suffix}")
        Path(file).write_text(text, encoding="utf-8")
        real = str(Path(file).resolve())
        # Hints list the searched roots, the temporary folder first: it holds nothing else.
        searched_first = f"{Path(folder).resolve()} first, then: "

        def rename(diagnostic: Diagnostic) -> Diagnostic:
            def named(text: str | None) -> str | None:
                if text is None:
                    return None
                text = text.replace(searched_first, "")
                return text.replace(real, STDIN_NAME).replace(file, STDIN_NAME)

            return dataclasses.replace(
                diagnostic,
                message=named(diagnostic.message) or "",
                file=named(diagnostic.file),
                hint=named(diagnostic.hint),
                chain=tuple(named(link) or "" for link in diagnostic.chain),
            )

        yield file, rename


def _is_flat(text: str) -> bool:
    if not text.lstrip().startswith("{"):
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and "fingerprint" in document
