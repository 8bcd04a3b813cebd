"""Read and check a flat recipe: the runtime's only input."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .canonical import fingerprint
from .errors import (
    Diagnostic,
    FingerprintMismatchError,
    RecipeError,
    RecipeNotFoundError,
    RecipeSyntaxError,
)
from .schemacheck import check_schema
from .yamlio import YamlDocument, parse_yaml

CHECKPOINT_RECIPE = "recipe.flat.json"
"""The flat recipe inside a checkpoint directory written by ``qrecipe quantize``."""


def _parse_json(text: str | bytes, file: str) -> tuple[Any, YamlDocument | None]:
    # YAML parsing gives positions and rejects duplicate keys; but JSON must really be JSON.
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecipeSyntaxError(
            Diagnostic(
                f"invalid JSON: {exc.msg}", file, exc.lineno, exc.colno, code=RecipeSyntaxError.code
            )
        ) from None
    documents = parse_yaml(text, file)
    doc = documents[0] if documents else None
    return (doc.data if doc else None), doc


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
        data, doc = _parse_json(source, file)
    else:
        path = Path(os.fspath(source))
        if path.is_dir():
            path = path / CHECKPOINT_RECIPE
        file = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RecipeNotFoundError(
                f"cannot read flat recipe {file}: {exc.strerror}", file=file
            ) from None
        data, doc = _parse_json(raw, file)
    check_schema(data, doc, file, schema="flat")
    expected = fingerprint(data)
    if data["fingerprint"] != expected:
        position = doc.position("/fingerprint") if doc else None
        line, column = position or (None, None)
        raise FingerprintMismatchError(
            Diagnostic(
                f"fingerprint {data['fingerprint']} does not match the content ({expected})",
                file,
                line,
                column,
                "/fingerprint",
                code=FingerprintMismatchError.code,
                hint=(
                    "the file was edited after it was resolved; regenerate it with 'qrecipe "
                    "resolve'"
                ),
            )
        )
    document: dict[str, Any] = data  # the flat schema has just checked it is an object
    return document


def is_flat_file(path: str | os.PathLike[str]) -> bool:
    """A ``.json`` file, or a checkpoint directory that holds its flat recipe."""
    return os.fspath(path).endswith(".json") or (Path(path) / CHECKPOINT_RECIPE).is_file()


__all__ = ["CHECKPOINT_RECIPE", "RecipeError", "is_flat_file", "load_flat"]
