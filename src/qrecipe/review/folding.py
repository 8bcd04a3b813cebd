"""Fold names of repeated layers: ``layers.{0..31}.mlp.gate_proj.weight_quantizer``.

A model repeats its blocks, so most quantizer names differ only in numeric path segments
(layer and expert indices). Names that agree everywhere but there are shown once, each
numeric segment as the set of its values (``{0..31}``, ``{0,2,4..7}``); a set of names that
is not a full product of such sets is split until every part is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Template = tuple[str | None, ...]
"""A name's segments with every numeric one replaced by None."""


def _split(name: str) -> tuple[Template, tuple[int, ...]]:
    segments = name.split(".")
    template = tuple(None if s.isdigit() else s for s in segments)
    values = tuple(int(s) for s in segments if s.isdigit())
    return template, values


def number_set(values: Iterable[int]) -> str:
    """``{0..3,7,9..11}``, or the one number alone."""
    ordered = sorted(set(values))
    if len(ordered) == 1:
        return str(ordered[0])
    parts: list[str] = []
    run_start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - run_start >= 2:
            parts.append(f"{run_start}..{previous}")
        else:
            parts.extend(str(v) for v in range(run_start, previous + 1))
        if value is not None:
            run_start = previous = value
    return "{" + ",".join(parts) + "}"


def _render(template: Template, columns: Sequence[Iterable[int]]) -> str:
    filled = iter(columns)
    return ".".join(number_set(next(filled)) if s is None else s for s in template)


def _products(rows: set[tuple[int, ...]]) -> list[list[set[int]]]:
    """Split ``rows`` into parts that are each a product of one value set per column."""
    if not rows:
        return []
    width = len(next(iter(rows)))
    columns = [{row[i] for row in rows} for i in range(width)]
    size = 1
    for column in columns:
        size *= len(column)
    if size == len(rows):
        return [columns]
    # Group the first column's values by the rows they continue into, then fold each group.
    tails: dict[frozenset[tuple[int, ...]], set[int]] = {}
    for head in sorted(columns[0]):
        tail = frozenset(row[1:] for row in rows if row[0] == head)
        tails.setdefault(tail, set()).add(head)
    parts = []
    for tail, heads in tails.items():
        parts += [[heads, *rest] for rest in _products(set(tail))]
    return parts


def fold_counted(names: Iterable[str]) -> list[tuple[str, int]]:
    """The names folded over their numeric segments, each with how many names it stands for,
    in order of first appearance."""
    groups: dict[Template, set[tuple[int, ...]]] = {}
    for name in names:
        template, values = _split(name)
        groups.setdefault(template, set()).add(values)
    folded = []
    for template, rows in groups.items():
        for part in _products(rows):
            count = 1
            for column in part:
                count *= len(column)
            folded.append((_render(template, part), count))
    return folded


def fold(names: Iterable[str]) -> list[str]:
    """The names folded over their numeric segments, in order of first appearance."""
    return [name for name, _ in fold_counted(names)]


def family(name: str) -> str:
    """A name with every numeric segment as ``*``: the pattern its repeats share."""
    return ".".join("*" if s.isdigit() else s for s in name.split("."))
