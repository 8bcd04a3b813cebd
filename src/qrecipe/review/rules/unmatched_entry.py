"""``unmatched-entry``: an entry that matches no quantizer of the model, with the closest
real names as a hint.

Entries of the built-in library's shared snippets are left out: an exclusion list names
modules of many architectures, and most of them are absent from any one model by design.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterator

from ..folding import family, fold
from ..quantizers import QuantizerSlot, can_name_a_quantizer
from .base import Finding, LintContext, Rule, shown
from .kv_cache_without_attention import has_attention, kv_entries

CLOSEST = 3
CUTOFF = 0.6


def _similarity(core: str, name: str) -> float:
    """How alike ``core`` is to the best-matching segment or dotted tail of ``name``."""
    segments = name.split(".")
    parts = [*segments, *(".".join(segments[start:]) for start in range(len(segments) - 1))]
    return max(difflib.SequenceMatcher(None, core, part).ratio() for part in parts)


def closest_names(pattern: str, slots: list[QuantizerSlot]) -> list[str]:
    """The model's quantizer names (folded over layers) most like ``pattern``."""
    members: dict[str, list[str]] = {}
    for slot in slots:
        members.setdefault(family(slot.name), []).append(slot.name)
    core = pattern.strip("*")
    scored = sorted(
        ((_similarity(core, name), name) for name in members),
        key=lambda pair: -pair[0],
    )
    best = [name for score, name in scored[:CLOSEST] if score >= CUTOFF]
    return [folded for name in best for folded in fold(members[name])[:1]]


def _by_name(pattern: str, slots: list[QuantizerSlot]) -> list[QuantizerSlot]:
    return [s for s in slots if fnmatch.fnmatchcase(s.name, pattern)]


def check(context: LintContext) -> Iterator[Finding]:
    assert context.model is not None
    model = context.model
    # KV-cache entries on a model without attention are kv-cache-without-attention's to report.
    explained = set(kv_entries(context)) if not has_attention(model) else set()
    for index, matched in enumerate(context.decided.matched):
        entry = context.entries[index]
        location = context.recipe.locations[index]
        if matched or location.builtin or index in explained:
            continue
        if not can_name_a_quantizer(entry["quantizer_name"]):
            continue
        pattern, parent_class = entry["quantizer_name"], entry["parent_class"]
        message = f"{context.entry(index)} matches no quantizer of {model.architecture}"
        named = _by_name(pattern, model.slots) if parent_class else []
        hint: str | None
        if parent_class and parent_class not in model.classes:
            hint = f"the model has no layer of class {parent_class}"
            if f"nn.{parent_class}" in model.classes:
                hint += f" (torch classes are written nn.{parent_class})"
        elif named:
            classes = sorted({s.owner_class for s in named})
            message += f": the {len(named)} it names are in {', '.join(classes)} layers"
            hint = f"parent_class {parent_class} is none of their classes"
        else:
            closest = closest_names(pattern, model.slots)
            hint = f"closest names: {shown(closest)}" if closest else None
        yield Finding(message, hint, index)


RULE = Rule(
    id="unmatched-entry",
    level="warning",
    summary="an entry that matches no quantizer of the model (closest names as a hint)",
    needs_model=True,
    check=check,
)
