"""A recipe under review: its flat form, and where each of its entries was written.

The flat form says what the recipe means; its provenance (``resolve(..., provenance=True)``)
says which file and line each ``quant_cfg`` entry came from, so that every finding points at
the text a person wrote, imported snippets included. A flat JSON file can be reviewed too: its
recorded provenance, when it has one, points back at the YAML.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..language import expand, is_flat_file, load_flat, resolve

PathArg = str | os.PathLike[str]
BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class EntryLocation:
    """Where one ``quant_cfg`` entry was written."""

    file: str
    line: int | None = None
    column: int | None = None
    chain: tuple[str, ...] = ()
    """Files from the recipe down to the one holding the entry."""
    pointer: str = ""
    """JSON pointer of the entry when no line is known (a flat file without provenance)."""

    @property
    def builtin(self) -> bool:
        """Written in qrecipe's built-in library (shared by many recipes and models)."""
        return self.file.startswith(BUILTIN_PREFIX)

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass
class ReviewedRecipe:
    """A resolved recipe and the location of each of its entries."""

    name: str
    """The recipe as it was named (a path, a built-in name or a flat JSON file)."""
    flat: dict[str, Any]
    locations: list[EntryLocation]
    """Where each entry was written, by entry index."""
    location: EntryLocation
    """Where the recipe's ``quant_cfg`` was written: findings about the whole recipe go here."""

    @property
    def entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.flat["quantize"]["quant_cfg"]
        return entries

    @property
    def algorithm(self) -> dict[str, Any] | None:
        algorithm: dict[str, Any] | None = self.flat["quantize"]["algorithm"]
        return algorithm

    def describe_entry(self, index: int) -> str:
        """``entry 3 ('*weight_quantizer', parent_class nn.Linear)``."""
        entry = self.entries[index]
        text = f"entry {index} ({entry['quantizer_name']!r}"
        if entry.get("parent_class"):
            text += f", parent_class {entry['parent_class']}"
        return text + ")"


def read_recipe(name_or_path: PathArg, *, path: Sequence[PathArg] = ()) -> ReviewedRecipe:
    """Resolve a recipe (name, file, directory or flat JSON) for review.

    Raises :class:`~qrecipe.language.RecipeError` when it does not resolve.
    """
    name = os.fspath(name_or_path)
    if is_flat_file(name):
        flat = load_flat(name)
        location = EntryLocation(name, pointer="/quantize/quant_cfg")
        return ReviewedRecipe(name, flat, _recorded_locations(name, flat), location)
    flat = resolve(name, path=path, provenance=True)
    recorded = flat.pop("provenance")["entries"]
    # The provenance records file and line; the expanded tree's origins add the column.
    resolution = expand(name, path=path)
    quantize = resolution.tree.get("quantize") or {}
    written = quantize.get("quant_cfg") or []
    origin = resolution.origin(quantize)
    if origin is not None:
        line, column = origin.position("/quant_cfg")
        location = EntryLocation(origin.file, line, column, origin.chain)
    else:
        location = EntryLocation(resolution.recipe)
    locations = []
    for index, record in enumerate(recorded):
        origin = resolution.origin(written[index]) if index < len(written) else None
        locations.append(
            EntryLocation(
                file=record["file"],
                line=record["line"],
                column=origin.column if origin is not None else None,
                chain=tuple(record["chain"]),
            )
        )
    return ReviewedRecipe(name, flat, locations, location)


def _recorded_locations(file: str, flat: dict[str, Any]) -> list[EntryLocation]:
    entries = flat["quantize"]["quant_cfg"]
    provenance = flat.get("provenance") or {}
    recorded = provenance.get("entries") or []
    if len(recorded) == len(entries):
        return [EntryLocation(r["file"], r["line"], None, tuple(r["chain"])) for r in recorded]
    return [
        EntryLocation(file, pointer=f"/quantize/quant_cfg/{index}") for index in range(len(entries))
    ]
