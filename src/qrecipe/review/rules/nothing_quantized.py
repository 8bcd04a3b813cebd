"""``nothing-quantized``: a recipe that leaves every quantizer of the model disabled, as a
recipe written for another architecture does (its patterns name modules this one lacks)."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Finding, LintContext, Rule


def check(context: LintContext) -> Iterator[Finding]:
    assert context.model is not None
    if context.states and not any(state.enabled for state in context.states):
        yield Finding(
            f"the recipe quantizes none of the {len(context.states)} quantizers of "
            f"{context.model.architecture}",
            "'qrecipe explain' shows every quantizer's name; write the patterns for those",
        )


RULE = Rule(
    id="nothing-quantized",
    level="warning",
    summary="the recipe enables no quantizer of the model",
    needs_model=True,
    check=check,
)
