"""``undecided-quantizers``: quantizers of the model that no entry names, left enabled at the
default 8-bit integer format."""

from __future__ import annotations

from collections.abc import Iterator

from ..folding import fold
from .base import Finding, LintContext, Rule, shown


def check(context: LintContext) -> Iterator[Finding]:
    assert context.model is not None
    undecided = [s for s in context.states if s.decided_by is None and s.enabled]
    if not undecided:
        return
    names = fold(s.slot.name for s in undecided)
    yield Finding(
        f"{len(undecided)} quantizer(s) of {context.model.architecture} are named by no entry "
        f"and stay enabled at the default 8-bit integer format: {shown(names)}",
        "start the recipe with {quantizer_name: '*', enable: false}, or add entries for them",
    )


RULE = Rule(
    id="undecided-quantizers",
    level="warning",
    summary="quantizers no entry names, left enabled at the default 8-bit integer format",
    needs_model=True,
    check=check,
)
