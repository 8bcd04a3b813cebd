"""``qrecipe diff``: what changes between two recipes.

At the flat level: metadata and algorithm as JSON-pointer differences, and the ``quant_cfg``
entries aligned by what they select (``quantizer_name`` and ``parent_class``), so that an
inserted entry shows as one addition rather than as every later entry changing. With a model:
the quantizers whose format changes, grouped by the part of the model and role they belong
to ("mlp weight: NVFP4 ... -> FP8 ..., 96 quantizers").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..schema import attribute_defaults
from .folding import fold
from .jsondiff import differences, short
from .quantizers import ModelSkeleton, QuantizerSlot
from .recipe import ReviewedRecipe

UNCOMPARED_KEYS = ("fingerprint", "provenance", "quantize")
"""Top-level keys not compared as JSON: the fingerprint follows from the rest, provenance is
where entries were written, and ``quantize`` is compared part by part."""

GROUPED_CHILDREN = ("experts", "shared_experts", "shared_expert")
"""Children of a block kept in a group's name, so that experts and dense MLPs stay apart."""


def entry_summary(entry: dict[str, Any]) -> str:
    """``'*weight_quantizer' cfg {"num_bits":[4,3]}``: what the entry selects and sets."""
    text = repr(entry["quantizer_name"])
    if entry["parent_class"]:
        text += f" in {entry['parent_class']}"
    cfg = entry["cfg"]
    if cfg is None:
        return f"{text} enable: {'true' if entry['enable'] else 'false'}"
    defaults = attribute_defaults()
    stages = cfg if isinstance(cfg, list) else [cfg]
    changed = [{k: v for k, v in stage.items() if defaults.get(k) != v} for stage in stages]
    shown = changed if isinstance(cfg, list) else changed[0]
    text += f" cfg {short(shown)}"
    return text if entry["enable"] else f"{text} (disabled)"


@dataclass(frozen=True)
class EntryChange:
    """An entry added, removed or changed; indices are positions in each recipe."""

    change: str
    """``added``, ``removed`` or ``changed``."""
    before: int | None
    after: int | None
    summary: str
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "entry": self.summary,
            "differences": self.differences,
        }


@dataclass(frozen=True)
class QuantizerChange:
    """Quantizers of one part of the model whose format changes the same way."""

    group: str
    role: str
    before: str
    after: str
    names: list[str]
    """Folded names."""
    count: int

    def __str__(self) -> str:
        return f"{self.group} {self.role}: {self.before} -> {self.after}, {self.count} quantizers"

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "role": self.role,
            "before": self.before,
            "after": self.after,
            "count": self.count,
            "quantizers": self.names,
        }


@dataclass
class RecipeDiff:
    before: ReviewedRecipe
    after: ReviewedRecipe
    header: list[str]
    """Differences outside ``quantize`` (metadata)."""
    algorithm: list[str]
    settings: list[str]
    """Other ``quantize`` settings (``effective_bits``)."""
    entries: list[EntryChange]
    quantizers: list[QuantizerChange] | None = None
    """With a model: the quantizers whose format changes; None without one."""
    model: ModelSkeleton | None = None

    @property
    def same(self) -> bool:
        return bool(self.before.flat["fingerprint"] == self.after.flat["fingerprint"])

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "same": self.same,
            "before": {"recipe": self.before.name, "fingerprint": self.before.flat["fingerprint"]},
            "after": {"recipe": self.after.name, "fingerprint": self.after.flat["fingerprint"]},
            "metadata": self.header,
            "algorithm": self.algorithm,
            "settings": self.settings,
            "entries": [change.to_dict() for change in self.entries],
        }
        if self.model is not None and self.quantizers is not None:
            data["model"] = {"source": self.model.source, "architecture": self.model.architecture}
            data["quantizers"] = [change.to_dict() for change in self.quantizers]
        return data

    def lines(self) -> Iterator[str]:
        """The difference as text for people."""
        yield f"--- {self.before.name} ({self.before.flat['fingerprint']})"
        yield f"+++ {self.after.name} ({self.after.flat['fingerprint']})"
        if self.same:
            yield "same recipe (same fingerprint)"
        for title, found in (
            ("metadata", self.header),
            ("algorithm", self.algorithm),
            ("settings", self.settings),
        ):
            if found:
                yield f"{title}:"
                yield from (f"  {line}" for line in found)
        if self.entries:
            yield "entries:"
        for change in self.entries:
            if change.change == "added":
                where = self.after.locations[change.after or 0]
                yield f"  + {change.after}: {change.summary}  ({where})"
            elif change.change == "removed":
                where = self.before.locations[change.before or 0]
                yield f"  - {change.before}: {change.summary}  ({where})"
            else:
                where = self.after.locations[change.after or 0]
                yield f"  ~ {change.before} -> {change.after}: {change.summary}  ({where})"
                yield from (f"      {line}" for line in change.differences)
        if self.model is None or self.quantizers is None:
            return
        changed = sum(change.count for change in self.quantizers)
        yield (
            f"quantizers of {self.model.architecture} ({self.model.source}): "
            f"{changed} change format"
        )
        for moved in self.quantizers:
            yield f"  {moved}"
            yield from (f"      {name}" for name in moved.names[:3])
            if len(moved.names) > 3:
                yield f"      ... and {len(moved.names) - 3} more"


def _entry_key(entry: dict[str, Any]) -> tuple[str, str | None]:
    return entry["quantizer_name"], entry["parent_class"]


def entry_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[EntryChange]:
    """The entries added, removed and changed, aligned by what they select."""
    matcher = difflib.SequenceMatcher(
        None, [_entry_key(e) for e in before], [_entry_key(e) for e in after], autojunk=False
    )
    changes: list[EntryChange] = []
    for tag, start, end, other_start, other_end in matcher.get_opcodes():
        if tag == "equal":
            for old, new in zip(range(start, end), range(other_start, other_end), strict=True):
                found = list(differences(before[old], after[new]))
                if found:
                    summary = entry_summary(after[new])
                    changes.append(EntryChange("changed", old, new, summary, found))
            continue
        changes += [
            EntryChange("removed", old, None, entry_summary(before[old]))
            for old in range(start, end)
        ]
        changes += [
            EntryChange("added", None, new, entry_summary(after[new]))
            for new in range(other_start, other_end)
        ]
    return changes


def group_of(slot: QuantizerSlot) -> str:
    """The part of the model a quantizer belongs to: the block child it sits in (``mlp``,
    ``self_attn``, ``mlp.experts``), or its layer's own name outside repeated blocks."""
    segments = slot.owner.split(".")
    index = next((n for n, s in enumerate(segments) if s.isdigit()), None)
    if index is None or index + 1 >= len(segments):
        return segments[-1] or slot.owner
    group = segments[index + 1]
    following = segments[index + 2] if index + 2 < len(segments) else None
    if following in GROUPED_CHILDREN:
        group += f".{following}"
    return group


def quantizer_changes(
    model: ModelSkeleton, before: ReviewedRecipe, after: ReviewedRecipe
) -> list[QuantizerChange]:
    """Quantizers whose format (or on/off) differs, grouped by model part, role and change."""
    old = model.decide(before.entries).states
    new = model.decide(after.entries).states
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for was, now in zip(old, new, strict=True):
        if was.shown_format == now.shown_format:
            continue
        key = (group_of(was.slot), was.slot.role, was.shown_format, now.shown_format)
        groups.setdefault(key, []).append(was.slot.name)
    return [
        QuantizerChange(group, role, was, now, fold(names), len(names))
        for (group, role, was, now), names in groups.items()
    ]


def _outside_quantize(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if k not in UNCOMPARED_KEYS}


def _settings(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat["quantize"].items() if k not in ("algorithm", "quant_cfg")}


def diff(
    before: ReviewedRecipe, after: ReviewedRecipe, model: ModelSkeleton | None = None
) -> RecipeDiff:
    """What changes from ``before`` to ``after`` (and, with a model, to its quantizers)."""
    result = RecipeDiff(
        before,
        after,
        header=list(differences(_outside_quantize(before.flat), _outside_quantize(after.flat))),
        algorithm=list(differences(before.algorithm, after.algorithm, "/quantize/algorithm")),
        settings=list(differences(_settings(before.flat), _settings(after.flat), "/quantize")),
        entries=entry_changes(before.entries, after.entries),
        model=model,
    )
    if model is not None:
        result.quantizers = quantizer_changes(model, before, after)
    return result
