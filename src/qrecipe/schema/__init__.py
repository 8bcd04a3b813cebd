"""The published JSON Schemas: the contract every qrecipe tool derives from.

``recipe.schema.json`` describes the authoring language (recipes and snippets, with ``imports``
and ``$import``); ``flat.schema.json`` the resolved, canonical form the runtime consumes.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILES = {
    "recipe": "recipe.schema.json",
    "flat": "flat.schema.json",
    "catalog": "catalog.json",
}
SCHEMA_NAMES = ("recipe", "flat")


def schema_text(name: str) -> str:
    """The exact published text of schema ``name`` (``recipe``, ``flat`` or ``catalog``)."""
    try:
        filename = SCHEMA_FILES[name]
    except KeyError:
        known = ", ".join(SCHEMA_FILES)
        raise KeyError(f"unknown schema {name!r}; known schemas: {known}") from None
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Schema ``name`` parsed as a dict (shared; do not mutate)."""
    schema: dict[str, Any] = json.loads(schema_text(name))
    return schema


def schema_id(name: str) -> str:
    """The stable, versioned ``$id`` of a schema."""
    return str(load_schema(name)["$id"])


# The defaults below are part of the contract: the resolver fills them in and the runtime reads
# them, so they are read from the published schemas and never restated in code.


@cache
def attribute_defaults() -> dict[str, Any]:
    """Default of every quantizer attribute, from the flat schema (shared; do not mutate)."""
    properties = load_schema("flat")["$defs"]["attributes"]["properties"]
    return {name: spec["default"] for name, spec in properties.items()}


@cache
def rotate_defaults() -> dict[str, Any]:
    """Default of every field of the ``rotate`` attribute's object form (shared; do not mutate)."""
    properties = load_schema("flat")["$defs"]["attributes"]["properties"]["rotate"]["properties"]
    return {name: spec["default"] for name, spec in properties.items()}


@cache
def default_description() -> str:
    """The description a recipe gets when it gives none, from the flat schema."""
    return str(
        load_schema("flat")["properties"]["metadata"]["properties"]["description"]["default"]
    )


@cache
def default_algorithm() -> str:
    """The calibration algorithm a recipe gets when it names none, from the recipe schema."""
    return str(load_schema("recipe")["$defs"]["quantize"]["properties"]["algorithm"]["default"])
