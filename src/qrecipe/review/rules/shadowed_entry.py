"""``shadowed-entry``: an entry whose every effect later entries undo.

An entry sets ``enable`` on the quantizers it matches and, with a ``cfg``, their attributes;
a later entry matching the same quantizer sets ``enable`` again and, with a ``cfg`` of its
own, the attributes too. An entry is shadowed when, for every quantizer name it can match,
later entries of the same or no ``parent_class`` match it as well and (when it has a ``cfg``)
replace its attributes. The check reasons on the patterns alone, so it holds for every model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..quantizers import can_name_a_quantizer, names_covered, names_overlap
from .base import Finding, LintContext, Rule, shown
from .duplicate_entry import first_copies


def overrides(later: dict[str, Any], earlier: dict[str, Any]) -> bool:
    """Whether ``later`` undoes ``earlier`` on every quantizer both select (by class, cfg)."""
    same_class = later["parent_class"] is None or later["parent_class"] == earlier["parent_class"]
    return same_class and (earlier["cfg"] is None or later["cfg"] is not None)


def check(context: LintContext) -> Iterator[Finding]:
    entries = context.entries
    duplicated = set(first_copies(entries).values())
    for index, entry in enumerate(entries):
        pattern = entry["quantizer_name"]
        if index in duplicated or not can_name_a_quantizer(pattern):
            continue  # reported as a duplicate, or as a pattern that matches nothing at all
        later = [n for n in range(index + 1, len(entries)) if overrides(entries[n], entry)]
        if not later or not names_covered(pattern, [entries[n]["quantizer_name"] for n in later]):
            continue
        later = [n for n in later if names_overlap(pattern, entries[n]["quantizer_name"])]
        undoing = "replace its cfg and enable" if entry["cfg"] is not None else "set enable again"
        yield Finding(
            f"{context.entry(index)} has no effect: later entries {undoing} on every "
            f"quantizer it matches: {shown([context.entry_at(n) for n in later])}",
            "delete it, or move it after the entries that override it",
            index,
        )


RULE = Rule(
    id="shadowed-entry",
    level="warning",
    summary="an entry that later entries override on every quantizer it can match",
    needs_model=False,
    check=check,
)
