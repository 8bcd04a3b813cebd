"""Every independent problem of a recipe or snippet in one run.

Resolving stops at the first file that cannot be read or imported, so one misspelt key or one
missing snippet would hide every other mistake. Here the parts of the file being validated that
have a problem are left out (a whole ``quant_cfg`` entry, a top-level value, an import name
with every ``$import`` of it) and the rest is resolved and checked again, until nothing new is
found. A problem reported at or around a part left out could be a consequence of leaving it
out (an entry list left empty, a mapping left without a required key), so it is never
reported; when a part cannot be left out soundly, only the problems found so far are.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from .errors import Diagnostic, RecipeDeprecationWarning, RecipeError
from .library import Located
from .resolver import (
    ENTRY_LIST,
    HEADER,
    QUANTIZE_FILE,
    RECIPE,
    Resolution,
    Resolver,
    SourceFile,
)
from .schemacheck import schema_diagnostics
from .yamlio import join_pointer

# Each pass resolves the recipe once more; a file with more separate problems than this is
# reported with the problems of the first passes.
MAX_PASSES = 16

# Problems after which nothing else can be trusted or is worth the time.
_FINAL_CODES = frozenset({"syntax", "duplicate-key", "limit"})

# Where the quant_cfg entries of each kind of file are.
_ENTRIES_AT = {RECIPE: ("quantize", "quant_cfg"), QUANTIZE_FILE: ("quant_cfg",), ENTRY_LIST: ()}


def every_problem(
    resolver: Resolver,
    located: Located,
    first: Sequence[Diagnostic],
    finish: Callable[[Resolution], object],
) -> list[Diagnostic]:
    """``first`` (the problems that stopped resolving ``located``) and every problem independent
    of them, in the order they are written. ``finish`` checks a resolved recipe (flattens it)."""
    # (Snippets are checked by resolving them alone.)
    found = list(first)
    if any(d.code in _FINAL_CODES for d in first):
        return found
    top = resolver.unchecked(located)
    if top is None:
        return found
    dropped: set[str] = set()
    pending = [d.pointer for d in first if d.file == top.display]
    for _ in range(MAX_PASSES):
        units = {_unit(pointer, top.kind) for pointer in pending}
        if None in units:
            break
        if dropped and units <= dropped:
            break
        dropped |= {unit for unit in units if unit is not None}
        pruned = _pruned(top, dropped)
        if pruned is None:
            break
        with warnings.catch_warnings():
            # Deprecated names were already reported by the first run.
            warnings.simplefilter("ignore", RecipeDeprecationWarning)
            resolution, error, site = resolver.expand_source(pruned)
            if resolution is not None:
                if top.kind != RECIPE or not _entries_and_imports_only(dropped):
                    # Flattening fills what was left out with defaults (a recipe without its
                    # metadata or algorithm), so its problems could be consequences of that.
                    break
                try:
                    finish(resolution)
                except RecipeError as problems:
                    found += _independent(problems.diagnostics, top.display, dropped)
                break
        assert error is not None
        if any(d.code in _FINAL_CODES for d in error.diagnostics):
            break
        found += _independent(error.diagnostics, top.display, dropped)
        pending = [d.pointer for d in error.diagnostics if d.file == top.display]
        if site is not None:
            pending.append(site)
    return by_position(_unique(found))


def by_position(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Problems in the order they are written (a missing line or column counts as 0)."""
    return sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0, d.pointer))


def _unique(diagnostics: list[Diagnostic]) -> Iterator[Diagnostic]:
    seen: set[tuple[Any, ...]] = set()
    for d in diagnostics:
        key = (d.code, d.file, d.line, d.column, d.pointer, d.message)
        if key not in seen:
            seen.add(key)
            yield d


def _related(pointer: str, other: str) -> bool:
    """Whether one pointer is the other or lies inside it."""
    return pointer == other or pointer.startswith(other + "/") or other.startswith(pointer + "/")


def _independent(
    diagnostics: Sequence[Diagnostic], file: str, dropped: set[str]
) -> list[Diagnostic]:
    """The problems that cannot be a consequence of leaving out ``dropped`` parts of ``file``."""
    return [
        d for d in diagnostics if d.file != file or not any(_related(d.pointer, p) for p in dropped)
    ]


def _entries_and_imports_only(dropped: set[str]) -> bool:
    """Whether the parts left out of a recipe are only quant_cfg entries and import names."""
    entries = "/" + "/".join(_ENTRIES_AT[RECIPE]) + "/"
    return all(p.startswith(("/imports/", entries)) for p in dropped)


def _unit(pointer: str, kind: str) -> str | None:
    """The part of a file to leave out for a problem at ``pointer``: an ``imports:`` name
    (``/imports/<name>``), a quant_cfg entry, or a value at most two levels down in a recipe
    (one in a snippet); None when the problem is in the file as a whole."""
    tokens = pointer.split("/")[1:]
    if tokens[:1] == ["imports"]:
        return "/imports/" + tokens[1] if len(tokens) >= 2 else None
    entries_at = _ENTRIES_AT.get(kind)
    if entries_at is not None:
        depth = len(entries_at)
        index = tokens[depth] if len(tokens) > depth else ""
        if tuple(tokens[:depth]) == entries_at and index.isascii() and index.isdigit():
            return "/" + "/".join(tokens[: depth + 1])
    if "$import" in tokens:
        tokens = tokens[: tokens.index("$import")]  # the mapping that imports
    tokens = tokens[: 2 if kind == RECIPE else 1]
    return "/" + "/".join(tokens) if tokens else None


def _pruned(top: SourceFile, dropped: set[str]) -> SourceFile | None:
    """``top`` without the parts in ``dropped`` (adding every ``$import`` of a dropped import
    name to it), or None when what is left is not a well-formed file."""
    names = {p.split("/")[2] for p in dropped if p.startswith("/imports/")}
    for site in _import_sites(top.body, "", names):
        unit = _unit(site, top.kind)
        if unit is None:
            return None
        dropped.add(unit)
    values = frozenset(dropped)  # its import names are not looked up, but still declared
    imports = {k: v for k, v in top.imports.items() if _token(k) not in names}
    pruned = replace(top, dropped=values)
    checks: list[tuple[Any, str | None]]
    if top.kind == ENTRY_LIST and len(top.documents) == 2:
        checks = [(_without({"imports": imports} if imports else {}, values), HEADER)]
        checks.append((_without(top.body, values), ENTRY_LIST))
    else:
        whole = _without(top.body, values)
        written = top.body_doc.data
        if isinstance(whole, dict) and isinstance(written, dict) and "imports" in written:
            whole = {"imports": imports, **whole}
        checks = [(whole, None)]
    for data, definition in checks:
        for problem in schema_diagnostics(data, None, None, definition=definition):
            # Only what leaving parts out explains (a list left empty, a key left missing).
            if not any(
                _related(problem.pointer, p) and len(problem.pointer) <= len(p) for p in dropped
            ):
                return None
    return pruned


def _token(name: str) -> str:
    return join_pointer("", name)[1:]


def _without(value: Any, dropped: frozenset[str], pointer: str = "") -> Any:
    if isinstance(value, dict):
        return {
            key: _without(item, dropped, join_pointer(pointer, key))
            for key, item in value.items()
            if join_pointer(pointer, key) not in dropped
        }
    if isinstance(value, list):
        return [
            _without(item, dropped, join_pointer(pointer, index))
            for index, item in enumerate(value)
            if join_pointer(pointer, index) not in dropped
        ]
    return value


def _import_sites(value: Any, pointer: str, names: set[str]) -> Iterator[str]:
    """Where ``$import`` names one of ``names`` (escaped as pointer tokens)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _import_sites(item, join_pointer(pointer, index), names)
    elif isinstance(value, dict):
        for key, item in value.items():
            at = join_pointer(pointer, key)
            if key != "$import":
                yield from _import_sites(item, at, names)
                continue
            for index, name in enumerate(item if isinstance(item, list) else [item]):
                if isinstance(name, str) and _token(name) in names:
                    yield join_pointer(at, index) if isinstance(item, list) else at
