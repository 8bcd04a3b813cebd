"""What a lint rule is, what it sees and what it reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from ..quantizers import Decided, ModelSkeleton, QuantizerState
from ..recipe import ReviewedRecipe

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem a rule found; ``entry`` is the index of the entry it is about, if any."""

    message: str
    hint: str | None = None
    entry: int | None = None


@dataclass
class LintContext:
    """A recipe under review, and the model it is reviewed against when one was named."""

    recipe: ReviewedRecipe
    model: ModelSkeleton | None = None

    @cached_property
    def decided(self) -> Decided:
        """The model's quantizers as this recipe decides them (only with a model)."""
        if self.model is None:
            raise RuntimeError("a rule that needs a model ran without one")
        return self.model.decide(self.recipe.entries)

    @property
    def states(self) -> list[QuantizerState]:
        return self.decided.states

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.recipe.entries

    def entry(self, index: int) -> str:
        """``entry 3 ('*weight_quantizer')``, as messages name entries."""
        return self.recipe.describe_entry(index)

    def entry_at(self, index: int) -> str:
        """``entry 3 ('*weight_quantizer') at my.yaml:12``, for entries other than the subject."""
        return f"{self.entry(index)} at {self.recipe.locations[index]}"


@dataclass(frozen=True)
class Rule:
    """A lint rule: an id for messages and ``--ignore``, and the check itself."""

    id: str
    level: Level
    summary: str
    """One line saying what the rule finds (the docs' rule table and SARIF's description)."""
    needs_model: bool
    check: Callable[[LintContext], Iterable[Finding]]


def shown(items: list[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``."""
    text = ", ".join(items[:limit])
    if len(items) > limit:
        text += f" and {len(items) - limit} more"
    return text
