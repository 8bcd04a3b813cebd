"""``duplicate-entry``: an entry that repeats an earlier one exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...language import canonical_bytes
from .base import Finding, LintContext, Rule


def first_copies(entries: list[dict[str, Any]]) -> dict[int, int]:
    """For each entry equal to an earlier one, the index of the first such entry."""
    seen: dict[bytes, int] = {}
    copies = {}
    for index, entry in enumerate(entries):
        key = canonical_bytes(entry)
        if key in seen:
            copies[index] = seen[key]
        else:
            seen[key] = index
    return copies


def check(context: LintContext) -> Iterator[Finding]:
    for index, first in first_copies(context.entries).items():
        yield Finding(
            f"{context.entry(index)} repeats {context.entry_at(first)}",
            "delete one of them; the later one decides, the earlier one has no effect",
            index,
        )


RULE = Rule(
    id="duplicate-entry",
    level="warning",
    summary="an entry identical to an earlier one",
    needs_model=False,
    check=check,
)
