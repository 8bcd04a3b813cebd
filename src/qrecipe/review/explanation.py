"""``qrecipe explain``: every quantizer of a model, its format, and the entry that decided it.

Quantizers of repeated layers that share a format and a deciding entry are folded into one
row (``model.layers.{0..31}.mlp.gate_proj.weight_quantizer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .folding import family, fold_counted
from .quantizers import ModelSkeleton, QuantizerState
from .recipe import EntryLocation, ReviewedRecipe


@dataclass(frozen=True)
class EntryRef:
    """An entry of the recipe, by index, and where it was written."""

    index: int
    location: EntryLocation

    def __str__(self) -> str:
        return str(self.location)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry": self.index,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
        }


@dataclass(frozen=True)
class Row:
    """Quantizers (folded) that share a role, a format and the entries that decided them."""

    quantizer: str
    count: int
    role: str
    enabled: bool
    format: str
    decided_by: EntryRef | None
    configured_by: EntryRef | None
    """Set when another entry than ``decided_by`` gave the format (a ``cfg``)."""

    @property
    def decided_text(self) -> str:
        if self.decided_by is None:
            return "default (no entry)"
        text = str(self.decided_by)
        if self.configured_by is not None:
            text += f" (format: {self.configured_by})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantizer": self.quantizer,
            "count": self.count,
            "role": self.role,
            "enabled": self.enabled,
            "format": self.format,
            "decided_by": self.decided_by.to_dict() if self.decided_by else None,
            "configured_by": self.configured_by.to_dict() if self.configured_by else None,
        }


@dataclass
class Explanation:
    recipe: ReviewedRecipe
    model: ModelSkeleton
    states: list[QuantizerState]
    rows: list[Row]

    @property
    def enabled(self) -> int:
        return sum(1 for s in self.states if s.enabled)

    def heading(self) -> str:
        return (
            f"{self.recipe.name} on {self.model.architecture} ({self.model.source}): "
            f"{len(self.states)} quantizers, {self.enabled} enabled"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.name,
            "fingerprint": self.recipe.flat["fingerprint"],
            "model": {
                "source": self.model.source,
                "architecture": self.model.architecture,
                "quantizers": len(self.states),
                "enabled": self.enabled,
            },
            "quantizers": [row.to_dict() for row in self.rows],
        }


def _ref(recipe: ReviewedRecipe, index: int | None) -> EntryRef | None:
    return None if index is None else EntryRef(index, recipe.locations[index])


@dataclass(frozen=True)
class _RowKey:
    name: str
    role: str
    format: str
    enabled: bool
    decided_by: int | None
    configured_by: int | None


def explain(recipe: ReviewedRecipe, model: ModelSkeleton, *, folded: bool = True) -> Explanation:
    """The rows of the table: each quantizer of ``model`` as ``recipe`` decides it."""
    states = model.decide(recipe.entries).states
    groups: dict[_RowKey, list[str]] = {}
    for state in states:
        configured = state.configured_by if state.enabled else None
        key = _RowKey(
            name=family(state.slot.name) if folded else state.slot.name,
            role=state.slot.role,
            format=state.shown_format,
            enabled=state.enabled,
            decided_by=state.decided_by,
            configured_by=None if configured == state.decided_by else configured,
        )
        groups.setdefault(key, []).append(state.slot.name)
    rows = [
        Row(
            quantizer=name,
            count=count,
            role=key.role,
            enabled=key.enabled,
            format=key.format,
            decided_by=_ref(recipe, key.decided_by),
            configured_by=_ref(recipe, key.configured_by),
        )
        for key, names in groups.items()
        for name, count in fold_counted(names)
    ]
    return Explanation(recipe, model, states, rows)
