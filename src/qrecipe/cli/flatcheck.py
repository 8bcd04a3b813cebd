"""Check that committed flat recipes (``*.flat.json``) still match what their sources resolve to.

A committed flat file works like a lockfile: it pins exactly what a recipe means, so a change
to the recipe, to a snippet it imports, or to qrecipe itself shows up in review. This command
(``qrecipe check-flat``) resolves the source of every flat file again and reports
each one whose result differs.

The source of ``dir/name.flat.json`` is, in this order:

1. ``dir/name.yaml``, ``dir/name.yml`` or a directory recipe ``dir/name/`` next to it;
2. the ``provenance.recipe`` the file records (``qrecipe resolve --provenance``), a path from
   the repository root or a recipe name, built-in names included.

Without file arguments every ``*.flat.json`` tracked by git is checked, because any YAML
change (a snippet, say) can change what a recipe resolves to.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..language import (
    Diagnostic,
    RecipeDeprecationWarning,
    RecipeError,
    RecipeNotFoundError,
    load_flat,
    resolve,
)
from ..review import differences
from .reporting import Result

FLAT_SUFFIX = ".flat.json"
SOURCE_SUFFIXES = (".yaml", ".yml")
DIRECTORY_RECIPE_FILES = ("quantize.yml", "quantize.yaml")
# Where each entry came from is useful to readers but changes whenever lines move; it does not
# change what the recipe means, so it is regenerated, never compared.
UNCOMPARED_KEYS = ("provenance",)
MAX_DIFFERENCES_SHOWN = 12


def tracked_flat_files() -> list[str]:
    """Every ``*.flat.json`` in the git index of the current directory's repository."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--", f"*{FLAT_SUFFIX}"],
        capture_output=True,
        check=True,
    )
    names = listing.stdout.decode("utf-8", "surrogateescape").split("\0")
    # A file deleted from the work tree but not yet from the index has nothing to check.
    return sorted(name for name in names if name and Path(name).is_file())


def sibling_source(flat_file: Path) -> Path | None:
    """``name.yaml``, ``name.yml`` or the directory recipe ``name/`` beside ``name.flat.json``."""
    stem = flat_file.name[: -len(FLAT_SUFFIX)]
    for suffix in SOURCE_SUFFIXES:
        candidate = flat_file.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    directory = flat_file.with_name(stem)
    if any((directory / name).is_file() for name in DIRECTORY_RECIPE_FILES):
        return directory
    return None


def parse_loosely(path: Path) -> Any:
    """The JSON of an invalid flat file, if it parses at all: it may still name its source."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def recorded_source(document: Any) -> str | None:
    """The ``provenance.recipe`` of a flat document, when it records one."""
    if not isinstance(document, dict):
        return None
    provenance = document.get("provenance")
    recipe = provenance.get("recipe") if isinstance(provenance, dict) else None
    return recipe if isinstance(recipe, str) and recipe else None


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in UNCOMPARED_KEYS}


def regenerate_command(source: str, flat_file: str, roots: Sequence[str], provenance: bool) -> str:
    words = ["qrecipe", "resolve", source, "-o", flat_file]
    for root in roots:
        words += ["--path", root]
    if provenance:
        words.append("--provenance")
    return shlex.join(words)


def resolve_quietly(source: str, roots: Sequence[str], provenance: bool) -> dict[str, Any]:
    # A renamed built-in still resolves; the notice belongs to 'qrecipe resolve', not here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecipeDeprecationWarning)
        return resolve(source, path=roots, provenance=provenance)


def check_flat_file(flat_file: str, roots: Sequence[str]) -> Result:
    """Whether ``flat_file`` is up to date with its source; its diagnostics say why not."""
    path = Path(flat_file)
    committed: dict[str, Any] | None = None
    committed_problems: list[Diagnostic] = []
    try:
        committed = load_flat(flat_file)
        document: Any = committed
    except RecipeError as error:
        committed_problems = error.diagnostics
        document = parse_loosely(path)

    def problem(code: str, message: str, *details: str) -> Result:
        diagnostic = Diagnostic(message=message, file=flat_file, code=code)
        return Result(flat_file, [diagnostic], details=list(details))

    sibling = sibling_source(path)
    source = sibling.as_posix() if sibling else recorded_source(document)
    if source is None:
        stem = path.name[: -len(FLAT_SUFFIX)]
        looked_for = ", ".join(f"{stem}{suffix}" for suffix in SOURCE_SUFFIXES)
        return problem(
            "flat-without-source",
            "no source recipe found for it",
            f"looked for {looked_for} or a directory recipe {stem}/ next to it, and for a "
            "provenance.recipe in it",
            "hint: keep the recipe next to its flat file, or delete the flat file if the "
            "recipe is gone",
        )

    with_provenance = recorded_source(document) is not None
    command = regenerate_command(source, flat_file, roots, with_provenance)
    try:
        current = resolve_quietly(source, roots, with_provenance)
    except RecipeError as error:
        details = indented(error.diagnostics)
        if sibling is None and type(error) is RecipeNotFoundError:
            message = f"its source recipe {source!r} (from provenance.recipe) was not found"
            return problem("flat-source-not-found", message, *details)
        return problem(
            "flat-source-invalid",
            f"its source {source} does not resolve:",
            *details,
            f"fix {source}, then regenerate with: {command}",
        )

    if committed is None:
        return problem(
            "flat-invalid",
            "is not a valid flat recipe:",
            *indented(committed_problems),
            f"regenerate it with: {command}",
        )

    changes = list(differences(comparable(committed), comparable(current)))
    if not changes:
        return Result(flat_file)
    old, new = committed["fingerprint"], current["fingerprint"]
    fingerprint_line = (
        f"fingerprint: committed {old}, {source} now resolves to {new}"
        if old != new
        else f"fingerprint: unchanged ({old}); only fields outside it differ"
    )
    shown = [line for line in changes if not line.startswith("changed /fingerprint:")]
    shown = shown[:MAX_DIFFERENCES_SHOWN]
    hidden = len(changes) - len(shown) - (old != new)
    details = [fingerprint_line, *shown]
    if hidden > 0:
        details.append(f"... and {hidden} more difference(s)")
    details.append(f"regenerate it with: {command}")
    return problem("flat-stale", f"out of date with its source {source}", *details)


def indented(diagnostics: Sequence[Diagnostic]) -> list[str]:
    """Diagnostics of another file, as detail lines one level deeper."""
    return [f"  {line}" for d in diagnostics for line in d.format().splitlines()]
