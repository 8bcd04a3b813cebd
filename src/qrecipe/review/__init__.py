"""Reviewing recipes: lint rules, and explaining and comparing recipes against a model.

This layer sits between the runtime and the command line. Everything here works on the flat
form and its provenance without torch; only :func:`load_model` (``--model``) builds a model,
on the ``meta`` device, with torch and transformers, and plans its quantizers with the
runtime's own placement so that names are exactly those ``apply`` would create.
"""

from .diffing import EntryChange, QuantizerChange, RecipeDiff, diff
from .explanation import Explanation, Row, explain
from .jsondiff import differences
from .linting import UnknownRuleError, check_rule_ids, lint, rule_ids
from .model import ModelLoadError, load_model
from .quantizers import Decided, ModelSkeleton, QuantizerSlot, QuantizerState
from .recipe import EntryLocation, ReviewedRecipe, read_recipe
from .rules import RULES, Rule

__all__ = [
    "RULES",
    "Decided",
    "EntryChange",
    "EntryLocation",
    "Explanation",
    "ModelLoadError",
    "ModelSkeleton",
    "QuantizerChange",
    "QuantizerSlot",
    "QuantizerState",
    "RecipeDiff",
    "ReviewedRecipe",
    "Row",
    "Rule",
    "UnknownRuleError",
    "check_rule_ids",
    "diff",
    "differences",
    "explain",
    "lint",
    "load_model",
    "read_recipe",
    "rule_ids",
]
