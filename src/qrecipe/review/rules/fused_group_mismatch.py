"""``fused-group-mismatch``: layers that serving engines fuse into one GEMM, quantized with
different formats or scale granularity.

vLLM, SGLang and TensorRT-LLM load the q/k/v projections of an attention layer as one matrix
(DeepSeek's q_a/kv_a down-projections too), gate and up of an MLP as one, and the experts of a
mixture-of-experts layer as one grouped GEMM per projection; each such matrix has one format.
A recipe that quantizes the parts differently produces a checkpoint that cannot be served, as
ModelOpt's recipe-search guidance warns ("reject or rewrite recipes that mix quantization
inside a fused runtime group").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..folding import family, fold
from ..quantizers import QuantizerState
from .base import Finding, LintContext, Rule

SIBLINGS = (
    ("q/k/v projections", frozenset({"q_proj", "k_proj", "v_proj"})),
    ("query/key/value projections", frozenset({"query", "key", "value"})),
    ("q_a/kv_a projections", frozenset({"q_a_proj", "kv_a_proj_with_mqa"})),
    ("gate/up projections", frozenset({"gate_proj", "up_proj"})),
    ("w1/w3 projections", frozenset({"w1", "w3"})),
)
"""Sibling layers fused into one matrix: (what they are called, their attribute names)."""

EXPERT_PROJECTIONS = {
    "gate_proj": "gate/up",
    "up_proj": "gate/up",
    "w1": "gate/up",
    "w3": "gate/up",
    "down_proj": "down",
    "w2": "down",
}
"""Projections of experts stored one module per expert, by the grouped GEMM they join."""

_EXPERT_MODULE = re.compile(r"^(?P<experts>.*\bexperts)\.(?P<index>\d+)\.(?P<proj>[^.]+)$")
_COMPARED_ROLES = ("weight", "input")


@dataclass(frozen=True)
class Group:
    label: str
    parent: str
    role: str


def group_of(state: QuantizerState) -> tuple[Group, str] | None:
    """The fused group a quantizer belongs to and its name within it, if any."""
    slot = state.slot
    if slot.role not in _COMPARED_ROLES:
        return None
    if slot.expert is not None:
        projection = slot.attr.split("_weight_quantizers")[0]
        return Group(
            f"expert {projection} weights", slot.owner, slot.role
        ), f"experts.{slot.expert}"
    expert = _EXPERT_MODULE.match(slot.owner)
    if expert and expert["proj"] in EXPERT_PROJECTIONS:
        label = f"expert {EXPERT_PROJECTIONS[expert['proj']]} projections"
        member = f"experts.{expert['index']}.{expert['proj']}"
        return Group(label, expert["experts"], slot.role), member
    parent, _, name = slot.owner.rpartition(".")
    for label, names in SIBLINGS:
        if name in names:
            return Group(label, parent, slot.role), name
    return None


def _deciding_entry(state: QuantizerState) -> int | None:
    if state.enabled and state.configured_by is not None:
        return state.configured_by
    return state.decided_by


@dataclass(frozen=True)
class Mismatch:
    """One way a group's members differ; layers repeating it share one."""

    label: str
    role: str
    family: str
    formats: tuple[tuple[str, tuple[str, ...]], ...]
    """Each format and the members (folded) that have it."""


def check(context: LintContext) -> Iterator[Finding]:
    groups: dict[Group, list[tuple[str, QuantizerState]]] = {}
    for state in context.states:
        found = group_of(state)
        if found is not None:
            groups.setdefault(found[0], []).append((found[1], state))
    parents: dict[Mismatch, list[str]] = {}
    odd_entry: dict[Mismatch, int | None] = {}
    for group, members in groups.items():
        by_format: dict[str, list[str]] = {}
        for name, state in members:
            by_format.setdefault(state.shown_format, []).append(name)
        if len(by_format) < 2:
            continue
        formats = tuple((fmt, tuple(fold(names))) for fmt, names in by_format.items())
        mismatch = Mismatch(group.label, group.role, family(group.parent), formats)
        parents.setdefault(mismatch, []).append(group.parent)
        if mismatch not in odd_entry:
            # The entry to change is the one that set the format fewest members have.
            fewest = min(by_format.values(), key=len)[0]
            odd_entry[mismatch] = _deciding_entry(next(s for n, s in members if n == fewest))
    for mismatch, where in parents.items():
        described = "; ".join(f"{', '.join(names)}: {fmt}" for fmt, names in mismatch.formats)
        yield Finding(
            f"the {mismatch.label} of {', '.join(fold(where))} are one GEMM in serving "
            f"engines, but their {mismatch.role} quantizers differ: {described}",
            "give the whole group one format and scale granularity (one entry naming every "
            "member); a checkpoint mixing them cannot be served",
            odd_entry[mismatch],
        )


RULE = Rule(
    id="fused-group-mismatch",
    level="error",
    summary="layers served as one GEMM (q/k/v, gate/up, experts) with different formats",
    needs_model=True,
    check=check,
)
