"""A model's quantizers as plain data: where each one goes and what a recipe makes of it.

These records carry no tensors and import no torch, so every rule that reads them runs the
same whether the model was built a moment ago or described in a test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .globs import TooComplexError, covered, overlap

QUANTIZER_NAMES = (
    "*_quantizer",
    *(f"*_quantizers.{'[0-9]' * digits}" for digits in range(1, 5)),
)
"""Every name a quantizer can have, as globs: ``<module>.<kind>_quantizer``, and the per-expert
``<experts>.<projection>_weight_quantizers.<index>`` of fused mixture-of-experts layers."""


def can_name_a_quantizer(pattern: str) -> bool:
    """Whether some quantizer name could ever match ``pattern``."""
    return any(overlap(pattern, names) for names in QUANTIZER_NAMES)


def names_overlap(pattern: str, other: str) -> bool:
    """Whether some quantizer name could match both patterns."""
    return any(overlap(pattern, other, names) for names in QUANTIZER_NAMES)


def names_covered(pattern: str, by: Sequence[str]) -> bool:
    """Whether every quantizer name that ``pattern`` matches is matched by one of ``by``.

    One pattern of ``by`` covering it alone is tried first (the common case, and cheap); a
    union too complex to decide counts as not covering, so that no finding rests on a guess.
    """

    def within(some: Sequence[str]) -> bool:
        return all(covered([pattern, names], some) for names in QUANTIZER_NAMES)

    try:
        return any(within([one]) for one in by) or (len(by) > 1 and within(by))
    except TooComplexError:
        return False


@dataclass(frozen=True)
class QuantizerSlot:
    """One place a quantizer goes in a model, as the runtime places it."""

    name: str
    """Full name, e.g. ``model.layers.0.self_attn.q_proj.weight_quantizer``."""
    owner: str
    """Module path of the layer it belongs to."""
    attr: str
    """Its attribute on that layer (``weight_quantizer``, ``gate_up_proj_weight_quantizers.3``)."""
    role: str
    """``weight``, ``input``, ``output``, ``q_bmm``, ``k_bmm`` or ``v_bmm``."""
    owner_class: str
    """The layer's class as ``parent_class`` spells it (``nn.Linear``, ``LlamaAttention``)."""
    classes: frozenset[str] = field(repr=False)
    """Every ``parent_class`` value that selects the layer."""
    expert: int | None = None
    """Index of the expert, for per-expert weight quantizers of fused experts."""


@dataclass(frozen=True)
class QuantizerState:
    """What one recipe makes of one quantizer."""

    slot: QuantizerSlot
    enabled: bool
    format: str
    """Human name of its format and scale granularity, e.g. ``FP8 E4M3 per-tensor``."""
    decided_by: int | None
    """Index of the last entry matching it (it set ``enable``); None: no entry did."""
    configured_by: int | None
    """Index of the entry whose ``cfg`` set its attributes; None: the placement default."""

    @property
    def shown_format(self) -> str:
        """The format when it quantizes, ``off`` when it does not."""
        return self.format if self.enabled else "off"


@dataclass(frozen=True)
class Decided:
    """What the entries of one recipe make of every quantizer of one model."""

    states: list[QuantizerState]
    """Every quantizer, in model order."""
    matched: list[int]
    """How many quantizers each entry matched, by entry index."""


Decider = Callable[[Sequence[dict[str, Any]]], Decided]


@dataclass
class ModelSkeleton:
    """A model built without weights: its quantizer slots and how recipes decide them."""

    source: str
    """What ``--model`` named: a model directory or a ``config.json``."""
    architecture: str
    """The model class that was built, e.g. ``LlamaForCausalLM``."""
    generates: bool
    """Whether it generates text token by token, i.e. keeps a KV cache."""
    slots: list[QuantizerSlot]
    decider: Decider = field(repr=False)

    def decide(self, quant_cfg: Sequence[dict[str, Any]]) -> Decided:
        """Every quantizer as the entries of a flat ``quant_cfg`` leave it."""
        return self.decider(quant_cfg)

    @property
    def classes(self) -> frozenset[str]:
        """Every ``parent_class`` value that selects some layer holding quantizers."""
        return frozenset().union(*(slot.classes for slot in self.slots))
