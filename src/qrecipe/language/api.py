"""The Python API: load, resolve, validate, fingerprint, schema, list_recipes."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..schema import load_schema
from . import canonical
from .allproblems import every_problem
from .errors import Diagnostic, RecipeDeprecationWarning, RecipeError, RecipeNotFoundError
from .files import file_kind
from .flat import is_flat_file, load_flat
from .flatten import flatten
from .library import SUFFIXES, Library, Located, deprecated_names, strip_suffix
from .resolver import RECIPE, Resolution, Resolver

PathArg = str | os.PathLike[str]


_RESOLVERS: dict[tuple[Any, ...], Resolver] = {}


def get_resolver(path: Sequence[PathArg] = ()) -> Resolver:
    """A resolver for these extra roots; reused so parsed files stay cached (warm resolution)."""
    key = (tuple(os.fspath(p) for p in path), os.environ.get("QRECIPE_PATH", ""), os.getcwd())
    resolver = _RESOLVERS.get(key)
    if resolver is None:
        resolver = _RESOLVERS[key] = Resolver(Library(path))
    return resolver


def locate(name_or_path: PathArg, resolver: Resolver) -> Located:
    """Find a recipe by name or path; renamed built-ins resolve with a warning."""
    found = resolver.library.find_recipe(name_or_path)
    if found is not None:
        return found
    name = strip_suffix(os.fspath(name_or_path))
    renamed = deprecated_names().get(name)
    if renamed is not None:
        warnings.warn(
            f"recipe name {name!r} is deprecated; use {renamed!r}",
            RecipeDeprecationWarning,
            stacklevel=3,
        )
        found = resolver.library.find_recipe(renamed)
        if found is not None:
            return found
    library = resolver.library
    hint = (
        f"searched {library.searched()}; 'qrecipe list' shows the built-ins; "
        "add directories with --path"
    )
    similar = library.similar_name(os.fspath(name_or_path))
    if similar is not None:
        hint = f"did you mean {similar!r}? {hint}"
    raise RecipeNotFoundError(
        f"recipe {os.fspath(name_or_path)!r} was not found",
        file=os.fspath(name_or_path),
        hint=hint,
    )


def expand(name_or_path: PathArg, *, path: Sequence[PathArg] = ()) -> Resolution:
    resolver = get_resolver(path)
    return resolver.resolve(locate(name_or_path, resolver))


def load(name_or_path: PathArg, *, path: Sequence[PathArg] = ()) -> dict[str, Any]:
    """A recipe with every import expanded, as written otherwise (no defaults filled in).

    ``name_or_path`` is a built-in name (``general/ptq/fp8_default-kv_fp8``), a name under an
    extra search root, or a path to a recipe file or directory.
    """
    return expand(name_or_path, path=path).tree


def resolve(
    name_or_path: PathArg, *, path: Sequence[PathArg] = (), provenance: bool = False
) -> dict[str, Any]:
    """The flat canonical form of a recipe, with its fingerprint (see docs/flat-form.md)."""
    return flatten(expand(name_or_path, path=path), provenance=provenance)


def validate(target: PathArg, *, path: Sequence[PathArg] = ()) -> list[Diagnostic]:
    """Every problem of a recipe, snippet or flat JSON file (empty when it is valid).

    Recipes are resolved completely; snippets are checked with their imports resolved; a
    ``.json`` file is checked as a flat recipe, fingerprint included.
    """
    try:
        if is_flat_file(target):
            load_flat(target)
            return []
        resolver = get_resolver(path)
        located = locate(target, resolver)
        if _part_of_directory_recipe(located.path):
            # recipe.yml, metadata.yml and quantize.yml only make sense together.
            located = Located(located.path.parent, located.root)
        if file_kind(located.path) == "dir":
            flatten(resolver.resolve(located))
            return []
    except RecipeError as error:
        return list(error.diagnostics)
    try:
        source = resolver.read(located)
        if source.kind != RECIPE:
            resolver.resolve_snippet(located)
            return []
        resolution = resolver.resolve(located)
    except RecipeError as error:
        # The first problem stopped resolving: look past it for the others.
        return every_problem(resolver, located, error.diagnostics, flatten)
    try:
        flatten(resolution)
    except RecipeError as error:
        return list(error.diagnostics)
    return []


def _part_of_directory_recipe(file: Path) -> bool:
    stem, suffix = file.stem, file.suffix
    if stem not in ("recipe", "metadata", "quantize") or suffix not in SUFFIXES:
        return False
    return any(file_kind(file.parent / f"quantize{s}") == "file" for s in SUFFIXES)


def fingerprint(flat: dict[str, Any]) -> str:
    """The fingerprint of a flat recipe (``sha256:<hex>``), computed from its content."""
    return canonical.fingerprint(flat)


def schema(name: str = "recipe") -> dict[str, Any]:
    """A published JSON Schema as a dict: ``recipe`` (authoring) or ``flat``."""
    return load_schema(name)


@dataclass(frozen=True)
class RecipeInfo:
    """A recipe found by :func:`list_recipes`: its name, description and where it lives."""

    name: str
    description: str
    path: Path
    root: str = "builtin"


def list_recipes(*, path: Sequence[PathArg] = ()) -> list[RecipeInfo]:
    """Every built-in recipe, then every recipe under each extra root, sorted by name in each.

    ``root`` is ``"builtin"`` for the built-in library and the directory as given otherwise;
    snippets and files that do not parse are left out.
    """
    resolver = get_resolver(path)
    library = resolver.library
    groups = [("builtin", library.builtin_recipes())]
    groups += [(root.label, library.yaml_files(root)) for root in library.extra_roots]
    infos: list[RecipeInfo] = []
    for label, files in groups:
        found = [info for info in (_recipe_info(resolver, f, label) for f in files) if info]
        infos += sorted(found, key=lambda info: info.name)
    return infos


def _recipe_info(resolver: Resolver, located: Located, label: str) -> RecipeInfo | None:
    try:
        source = resolver.read(located)
    except RecipeError:
        return None
    if source.kind != RECIPE:
        return None
    name = strip_suffix(located.path.relative_to(located.root.path).as_posix())
    description = str((source.body.get("metadata") or {}).get("description", "")).strip()
    return RecipeInfo(name, " ".join(description.split()), located.path, label)
