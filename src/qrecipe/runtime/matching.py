"""Applying ``quant_cfg`` entries to the planned quantizers, in order (later entries win).

This works on the plan alone, so every quantizer's final state, and every problem with it, is
known before the model is touched.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from .attributes import complete_attributes
from .placement import Slot, class_names

Attributes = dict[str, Any] | list[dict[str, Any]]


@dataclass
class Decision:
    """The final state of one quantizer and which entries produced it."""

    attributes: Attributes
    decided_by: int | None = None
    """Index of the last entry that matched (it set the enable flag); None: no entry did."""
    configured_by: int | None = None
    """Index of the last entry whose ``cfg`` set the attributes; None: placement defaults."""

    @property
    def enabled(self) -> bool:
        stages = self.attributes if isinstance(self.attributes, list) else [self.attributes]
        return any(stage["enable"] for stage in stages)


@dataclass
class EntryMatch:
    """How many quantizers one entry matched."""

    index: int
    quantizer_name: str
    parent_class: str | None
    enable: bool
    has_cfg: bool
    matched: list[str] = field(default_factory=list)


def _name_matches(pattern: str, slot: Slot) -> bool:
    # fnmatchcase: the same answer on every platform (fnmatch folds case on Windows).
    return any(fnmatch.fnmatchcase(name, pattern) for name in slot.match_names)


def decide(
    slots: list[Slot], quant_cfg: list[dict[str, Any]]
) -> tuple[dict[str, Decision], list[EntryMatch]]:
    """Run the entries over the slots; returns the decisions by slot name and per-entry matches."""
    decisions = {s.name: Decision(copy.deepcopy(s.default)) for s in slots}
    parent_names = {id(s.parent): class_names(s.parent) for s in slots}
    matches: list[EntryMatch] = []
    for index, entry in enumerate(quant_cfg):
        pattern = entry["quantizer_name"]
        parent_class = entry.get("parent_class")
        enable = bool(entry.get("enable", True))
        cfg = entry.get("cfg")
        record = EntryMatch(index, pattern, parent_class, enable, cfg is not None)
        for slot in slots:
            if not _name_matches(pattern, slot):
                continue
            if parent_class and parent_class not in parent_names[id(slot.parent)]:
                continue
            record.matched.append(slot.name)
            decision = decisions[slot.name]
            decision.decided_by = index
            if cfg is None:
                stages = (
                    decision.attributes
                    if isinstance(decision.attributes, list)
                    else [decision.attributes]
                )
                for stage in stages:
                    stage["enable"] = enable
            else:
                decision.configured_by = index
                if isinstance(cfg, list):
                    decision.attributes = [complete_attributes(c, enable) for c in cfg]
                else:
                    decision.attributes = complete_attributes(cfg, enable)
        matches.append(record)
    return decisions, matches
