"""Read and check a flat recipe: the runtime's only input."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .canonical import fingerprint
from .errors import (
    FingerprintMismatchError,
    RecipeError,
)
from .files import file_kind, read_file
from .jsonio import parse_json
from .schemacheck import check_schema
from .yamlio import YamlDocument

CHECKPOINT_RECIPE = "recipe.flat.json"
"""The flat recipe inside a checkpoint directory written by ``qrecipe quantize``."""


def load_flat(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Load a flat recipe from a path, JSON text or a mapping; validate it and its fingerprint.

    A directory means the flat recipe a checkpoint carries (:data:`CHECKPOINT_RECIPE`).

    Raises :class:`~qrecipe.RecipeError` (with JSON pointer, and line/column for text) when the
    document is not a valid flat recipe or its fingerprint does not match its content.
    """
    doc: YamlDocument | None = None
    if isinstance(source, Mapping):
        data: Any = copy.deepcopy(dict(source))
        file = "<flat recipe>"
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        file = "<flat recipe text>"
        doc = parse_json(source, file)
        data = doc.data
    else:
        file = flat_file_name(os.fspath(source))
        doc = parse_json(read_file(Path(file), file, "flat recipe"), file)
        data = doc.data
    check_schema(data, doc, file, schema="flat")
    flat: dict[str, Any] = data  # the flat schema has just checked it is an object
    expected = fingerprint(flat)
    if flat["fingerprint"] != expected:
        position = doc.position("/fingerprint") if doc else None
        line, column = position or (None, None)
        raise FingerprintMismatchError(
            f"fingerprint {flat['fingerprint']} does not match the content ({expected})",
            file=file,
            line=line,
            column=column,
            pointer="/fingerprint",
            hint="the file was edited after it was resolved; regenerate it with 'qrecipe resolve'",
        )
    return flat


def is_flat_file(path: str | os.PathLike[str]) -> bool:
    """A ``.json`` file, or a checkpoint directory that holds its flat recipe."""
    text = os.fspath(path)
    return text.endswith(".json") or file_kind(checkpoint_recipe(text)) == "file"


def checkpoint_recipe(directory: str) -> str:
    """The flat recipe of a checkpoint directory, named from the directory as given."""
    return directory.rstrip("/") + "/" + CHECKPOINT_RECIPE


def flat_file_name(target: str) -> str:
    """The flat recipe a target names: the file itself, or a checkpoint directory's."""
    return checkpoint_recipe(target) if file_kind(target) == "dir" else target


__all__ = ["CHECKPOINT_RECIPE", "RecipeError", "is_flat_file", "load_flat"]
