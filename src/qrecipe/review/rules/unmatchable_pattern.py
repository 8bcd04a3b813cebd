"""``unmatchable-pattern``: a ``quantizer_name`` that no quantizer name can ever match."""

from __future__ import annotations

from collections.abc import Iterator

from ..quantizers import can_name_a_quantizer
from .base import Finding, LintContext, Rule

ROLES = ("weight", "input", "output", "q_bmm", "k_bmm", "v_bmm")


def suggestion(pattern: str) -> str | None:
    """A nearby pattern that can match quantizers: the module's quantizers, or the suffix."""
    candidates = []
    if pattern.endswith(ROLES):
        candidates.append(f"{pattern}_quantizer")
    if not pattern.endswith("."):
        candidates.append(f"{pattern}.*")
    candidates.append(f"{pattern}*")
    return next((c for c in candidates if can_name_a_quantizer(c)), None)


def check(context: LintContext) -> Iterator[Finding]:
    for index, entry in enumerate(context.entries):
        pattern = entry["quantizer_name"]
        if can_name_a_quantizer(pattern):
            continue
        better = suggestion(pattern)
        hint = (
            "patterns match quantizer names such as 'model.layers.0.mlp.down_proj.weight_quantizer'"
        )
        hint += ", not module names"
        if better is not None:
            hint = f"did you mean {better!r}? {hint}"
        yield Finding(
            f"{context.entry(index)} can never match: every quantizer name ends in "
            "'_quantizer' (or '_quantizers.<expert>')",
            hint,
            index,
        )


RULE = Rule(
    id="unmatchable-pattern",
    level="error",
    summary="a quantizer_name no quantizer name can ever match (e.g. a module name)",
    needs_model=False,
    check=check,
)
