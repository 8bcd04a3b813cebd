"""``qrecipe lint``: run the rules over a recipe and locate what they find."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..language import Diagnostic
from .quantizers import ModelSkeleton
from .recipe import EntryLocation, ReviewedRecipe
from .rules import RULES, LintContext, Rule


class UnknownRuleError(ValueError):
    """``--ignore`` names a rule that does not exist."""


def rule_ids() -> list[str]:
    return [rule.id for rule in RULES]


def check_rule_ids(ids: Collection[str]) -> None:
    unknown = sorted(set(ids) - set(rule_ids()))
    if unknown:
        raise UnknownRuleError(
            f"unknown rule {', '.join(unknown)}; the rules are {', '.join(rule_ids())}"
        )


def lint(
    recipe: ReviewedRecipe,
    model: ModelSkeleton | None = None,
    *,
    ignore: Collection[str] = (),
    rules: Sequence[Rule] = RULES,
) -> list[Diagnostic]:
    """Every finding of every rule (those that need a model only with one), in entry order.

    Each finding is a :class:`~qrecipe.language.Diagnostic` whose ``code`` is the rule id and
    whose position is that of the entry it is about, or of the recipe's ``quant_cfg``.
    """
    check_rule_ids(ignore)
    context = LintContext(recipe, model)
    found: list[tuple[int, int, Diagnostic]] = []
    for order, rule in enumerate(rules):
        if rule.id in ignore or (rule.needs_model and model is None):
            continue
        for finding in rule.check(context):
            where = recipe.location if finding.entry is None else recipe.locations[finding.entry]
            position = -1 if finding.entry is None else finding.entry
            found.append((position, order, _diagnostic(rule, finding.message, finding.hint, where)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [diagnostic for _, _, diagnostic in found]


def _diagnostic(rule: Rule, message: str, hint: str | None, where: EntryLocation) -> Diagnostic:
    return Diagnostic(
        message,
        where.file,
        where.line,
        where.column,
        where.pointer,
        where.chain,
        code=rule.id,
        hint=hint,
    )
