"""``missing-base-disable``: a recipe that does not start from ``{quantizer_name: '*', enable:
false}``, so every quantizer it does not name keeps the default 8-bit integer format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import Finding, LintContext, Rule


def catch_all(entry: dict[str, Any]) -> bool:
    """An entry that decides every quantizer of every model."""
    return entry["quantizer_name"] == "*" and entry["parent_class"] is None


def check(context: LintContext) -> Iterator[Finding]:
    entries = context.entries
    if entries and catch_all(entries[0]):
        return
    message = "the recipe does not start from {quantizer_name: '*', enable: false}: "
    message += "quantizers it does not name keep the default 8-bit integer format, enabled"
    later = next((n for n, entry in enumerate(entries) if catch_all(entry)), None)
    if later is not None:
        message += f"; {context.entry_at(later)} comes after {later} other entries"
    yield Finding(
        message,
        "make the first entry '- $import: base_disable_all' (configs/ptq/units/base_disable_all) "
        "or {quantizer_name: '*', enable: false}",
    )


RULE = Rule(
    id="missing-base-disable",
    level="warning",
    summary="the first entry is not {quantizer_name: '*', enable: false}",
    needs_model=False,
    check=check,
)
