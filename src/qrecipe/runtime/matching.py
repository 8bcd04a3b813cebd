"""Applying ``quant_cfg`` entries to the planned quantizers, in order (later entries win).

This works on the plan alone, so every quantizer's final state, and every problem with it, is
known before the model is touched. An entry selects quantizers by name (``quantizer_name``,
an fnmatch pattern) and by the class of the layer that owns them (``parent_class``, see
:func:`class_names`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .attributes import complete_attributes, copy_attributes
from .placement import Owner, Slot, plan

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
    def stages(self) -> list[dict[str, Any]]:
        """One attribute object per stage (a single one unless ``cfg`` was a list)."""
        return self.attributes if isinstance(self.attributes, list) else [self.attributes]

    @property
    def enabled(self) -> bool:
        return any(stage["enable"] for stage in self.stages)


@dataclass
class RecipePlan:
    """Every quantizer a model gets, with the recipe's decision for each: nothing is placed yet."""

    owners: list[Owner]
    decisions: dict[str, Decision]
    """By slot name."""
    matches: list[EntryMatch]
    """One per quant_cfg entry, in order."""

    @property
    def slots(self) -> list[Slot]:
        return [slot for owner in self.owners for slot in owner.slots]


@dataclass
class EntryMatch:
    """How many quantizers one entry matched."""

    index: int
    quantizer_name: str
    parent_class: str | None
    enable: bool
    has_cfg: bool
    matched: list[str] = field(default_factory=list)


def class_names(module: nn.Module) -> set[str]:
    """Every name under which ``parent_class`` selects ``module``.

    Classes of ``torch.nn`` are called ``nn.<Class>`` (``nn.Linear``), as in the reference.
    Any other class answers to its plain name (``LlamaAttention``), its fully qualified name
    (``transformers.models.llama.modeling_llama.LlamaAttention``) and, for ``transformers``
    classes, ``hf.<Class>``. Base classes count too, like ``isinstance``: a subclass of
    ``nn.Linear`` is selected by ``nn.Linear``.
    """
    names: set[str] = set()
    for cls in type(module).__mro__:
        if cls in (nn.Module, object):
            continue
        module_name = cls.__module__ or ""
        if _in_torch_nn(module_name):
            names.add(f"nn.{cls.__name__}")
            names.add(f"torch.nn.{cls.__name__}")
        else:
            names.add(cls.__name__)
            if module_name.startswith("transformers."):
                names.add(f"hf.{cls.__name__}")
        names.add(f"{module_name}.{cls.__qualname__}")
    return names


def display_class_name(module: nn.Module) -> str:
    """The preferred ``parent_class`` spelling of the module's own class."""
    cls = type(module)
    return f"nn.{cls.__name__}" if _in_torch_nn(cls.__module__ or "") else cls.__name__


def _in_torch_nn(module_name: str) -> bool:
    return module_name == "torch.nn" or module_name.startswith("torch.nn.")


def _name_matcher(pattern: str) -> re.Pattern[str]:
    # fnmatchcase's own translation, compiled once per entry: the same answer on every
    # platform (fnmatch folds case on Windows).
    return re.compile(fnmatch.translate(pattern))


def _name_matches(matcher: re.Pattern[str], names: tuple[str, ...]) -> bool:
    return any(map(matcher.match, names))


def decide(
    slots: list[Slot], quant_cfg: list[dict[str, Any]]
) -> tuple[dict[str, Decision], list[EntryMatch]]:
    """Run the entries over the slots; returns the decisions by slot name and per-entry matches."""
    decisions = {s.name: Decision(copy_attributes(s.default)) for s in slots}
    parent_names = {id(s.parent): class_names(s.parent) for s in slots}
    # Worked out once, not once per entry: MoE models have tens of thousands of slots.
    slot_names = [(slot, slot.match_names) for slot in slots]
    matches: list[EntryMatch] = []
    for index, entry in enumerate(quant_cfg):
        pattern = entry["quantizer_name"]
        parent_class = entry.get("parent_class")
        enable = bool(entry.get("enable", True))
        cfg = entry.get("cfg")
        record = EntryMatch(index, pattern, parent_class, enable, cfg is not None)
        matcher = _name_matcher(pattern)
        # Completed once per entry, when it first matches; each quantizer gets its own copy.
        completed: Attributes | None = None
        for slot, names in slot_names:
            if not _name_matches(matcher, names):
                continue
            if parent_class and parent_class not in parent_names[id(slot.parent)]:
                continue
            record.matched.append(slot.name)
            decision = decisions[slot.name]
            decision.decided_by = index
            if cfg is None:
                for stage in decision.stages:
                    stage["enable"] = enable
            else:
                decision.configured_by = index
                if completed is None:
                    completed = (
                        [complete_attributes(c, enable) for c in cfg]
                        if isinstance(cfg, list)
                        else complete_attributes(cfg, enable)
                    )
                decision.attributes = copy_attributes(completed)
        matches.append(record)
    return decisions, matches


def plan_recipe(model: nn.Module, quant_cfg: list[dict[str, Any]]) -> RecipePlan:
    """Plan the model's quantizers and decide each one's state; the model is not changed."""
    owners = plan(model)
    decisions, matches = decide([slot for owner in owners for slot in owner.slots], quant_cfg)
    return RecipePlan(owners, decisions, matches)
