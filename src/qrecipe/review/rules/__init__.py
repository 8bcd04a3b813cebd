"""The lint rules, one module each; a new rule is a new module and one line in :data:`RULES`."""

from __future__ import annotations

from . import (
    duplicate_entry,
    fused_group_mismatch,
    kv_cache_without_attention,
    missing_base_disable,
    nothing_quantized,
    shadowed_entry,
    undecided_quantizers,
    unmatchable_pattern,
    unmatched_entry,
)
from .base import Finding, LintContext, Rule

RULES: tuple[Rule, ...] = (
    unmatchable_pattern.RULE,
    duplicate_entry.RULE,
    shadowed_entry.RULE,
    missing_base_disable.RULE,
    unmatched_entry.RULE,
    nothing_quantized.RULE,
    undecided_quantizers.RULE,
    fused_group_mismatch.RULE,
    kv_cache_without_attention.RULE,
)
"""Every rule, in the order findings of one entry are reported."""

__all__ = ["RULES", "Finding", "LintContext", "Rule"]
