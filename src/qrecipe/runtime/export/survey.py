"""Which layers of a model a checkpoint stores quantized, and how: the export plan.

The plan is made from the placements' owners (:mod:`..placement`) and one function that gives
each slot's attributes. Before calibration that function reads a recipe's decisions
(:func:`survey_recipe`, so that ``qrecipe quantize`` refuses before the long work); at export
time it reads the installed quantizers (:func:`survey_model`). Every problem is collected, so
that one refusal names them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ...language import Diagnostic
from ..errors import UnsupportedRecipeError, unsupported
from ..matching import RecipePlan
from ..placement import Owner, Slot, plan
from ..placement.layers import LINEAR_LIKE
from ..quantizer import SequentialQuantizer, TensorQuantizer
from .schemes import SUPPORTED, ActivationKind, Attributes, Scheme, Unexportable, classify_kv
from .schemes import classify_layer as classify

# Submodules of a mixture-of-experts block that route tokens: never quantized, always listed
# as excluded (serving engines otherwise expect them packed).
ROUTER_NAMES = ("gate", "router", "shared_expert_gate")


@dataclass
class LayerEntry:
    """A linear layer (or embedding) that carries quantizers, with its scheme (None: kept)."""

    name: str
    module: nn.Module
    scheme: Scheme | None


@dataclass
class ExpertsEntry:
    """A fused mixture-of-experts module: one scheme per projection, shared by every expert."""

    name: str
    module: nn.Module
    schemes: dict[str, Scheme | None]
    """By parameter: ``gate_up_proj`` (or ``up_proj``) and ``down_proj``."""
    count: int


@dataclass
class ExportPlan:
    """Every quantized layer's scheme, the KV-cache format, the layers kept unquantized."""

    layers: list[LayerEntry] = field(default_factory=list)
    experts: list[ExpertsEntry] = field(default_factory=list)
    kv: dict[str, ActivationKind] = field(default_factory=dict)
    """Attention module name -> KV-cache format."""
    routers: list[str] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)

    @property
    def kv_format(self) -> ActivationKind | None:
        kinds = set(self.kv.values())
        return next(iter(kinds)) if len(kinds) == 1 else None

    def schemes(self) -> dict[str, Scheme]:
        """The scheme of every quantized layer by module name (experts by projection name)."""
        found = {entry.name: entry.scheme for entry in self.layers if entry.scheme is not None}
        for experts in self.experts:
            for projection, scheme in experts.schemes.items():
                if scheme is not None:
                    found[f"{experts.name}.{projection}"] = scheme
        return found

    def raise_problems(self, export_format: str) -> None:
        """Refuse, naming every problem, when the plan has any."""
        if self.problems:
            raise UnsupportedRecipeError(
                [
                    dataclasses.replace(d, message=f"cannot export to {export_format}: {d.message}")
                    for d in self.problems
                ]
            )


AttributesOf = Callable[[Slot], Attributes]
PointerOf = Callable[[Slot], str]


class _Problems:
    """Problems grouped by (pointer, message) so that one line names every layer it hits."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], list[str]] = {}

    def add(self, pointer: str, message: str, name: str) -> None:
        self.found.setdefault((pointer, message), []).append(name)

    def diagnostics(self) -> list[Diagnostic]:
        out = []
        for (pointer, message), names in self.found.items():
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            out.append(
                unsupported(
                    f"{message} ({shown})", pointer, hint=f"checkpoints can hold: {SUPPORTED}"
                )
            )
        return out


def survey(owners: list[Owner], attributes_of: AttributesOf, pointer_of: PointerOf) -> ExportPlan:
    """The export plan of a model whose quantizers have the attributes ``attributes_of`` gives."""
    result = ExportPlan()
    problems = _Problems()
    for owner in owners:
        roles: dict[str, Slot] = {slot.role: slot for slot in owner.slots if slot.expert is None}

        def attrs(role: str, roles: dict[str, Slot] = roles) -> Attributes | None:
            slot = roles.get(role)
            return None if slot is None else attributes_of(slot)

        def pointer(*wanted: str, roles: dict[str, Slot] = roles) -> str:
            for role in wanted:
                if role in roles and pointer_of(roles[role]):
                    return pointer_of(roles[role])
            return ""

        try:
            if owner.kind == "attention":
                if attrs("q_bmm") is not None and _enabled(attrs("q_bmm")):
                    raise Unexportable("query quantizer (checkpoints hold k_scale and v_scale)")
                kind = classify_kv(attrs("k_bmm"), attrs("v_bmm"))
                if kind is not None:
                    result.kv[owner.name] = kind
            elif owner.kind == "experts":
                result.experts.append(_survey_experts(owner, attributes_of))
                result.routers += _routers(owner)
            elif isinstance(owner.module, (*LINEAR_LIKE, nn.Embedding)):
                scheme = classify(attrs("weight"), attrs("input"), attrs("output"))
                if scheme is not None and not isinstance(owner.module, nn.Linear):
                    raise Unexportable(
                        f"{type(owner.module).__name__} layers (checkpoints hold quantized "
                        "nn.Linear layers and fused experts only)"
                    )
                result.layers.append(LayerEntry(owner.name, owner.module, scheme))
            elif _enabled(attrs("input")) or _enabled(attrs("output")):
                raise Unexportable(
                    f"quantized activations of {type(owner.module).__name__} (checkpoints hold "
                    "the inputs of quantized linear layers only)"
                )
        except Unexportable as exc:
            problems.add(
                pointer("weight", "input", "output", "k_bmm", "v_bmm"), str(exc), owner.name
            )
    kinds = set(result.kv.values())
    if len(kinds) > 1:
        problems.add("", "KV-cache quantizers of different formats in one model", "attention")
    result.problems = problems.diagnostics()
    return result


def _enabled(attributes: Attributes | None) -> bool:
    if attributes is None:
        return False
    stages = attributes if isinstance(attributes, list) else [attributes]
    return any(stage.get("enable", True) for stage in stages)


def _survey_experts(owner: Owner, attributes_of: AttributesOf) -> ExpertsEntry:
    if any(slot.transposed for slot in owner.slots):
        raise Unexportable(
            "experts stored transposed (in_features, out_features) are not exported yet"
        )
    projections: dict[str, Scheme | None] = {}
    count = 0
    for slot in owner.slots:
        if slot.expert is None or slot.tensor is None:
            continue
        count = max(count, slot.expert + 1)
    for tensor_slot in owner.slots:
        if tensor_slot.expert is not None:
            continue
        tensor = tensor_slot.attr.removesuffix("_input_quantizer")
        found = {
            classify(attributes_of(slot), attributes_of(tensor_slot))
            for slot in owner.slots
            if slot.tensor == tensor and slot.expert is not None
        }
        if len(found) > 1:
            raise Unexportable(f"experts of {tensor} quantized in different formats")
        projections[tensor] = next(iter(found)) if found else None
    return ExpertsEntry(owner.name, owner.module, projections, count)


def _routers(owner: Owner) -> list[str]:
    """The routers beside a fused-experts module (in the same mixture-of-experts block)."""
    if "." not in owner.name:
        return []
    block = owner.name.rsplit(".", 1)[0]
    return [f"{block}.{name}" for name in ROUTER_NAMES]


def survey_recipe(recipe_plan: RecipePlan) -> ExportPlan:
    """The export plan a recipe's decisions give, before anything is placed or calibrated."""

    def attributes_of(slot: Slot) -> Attributes:
        return recipe_plan.decisions[slot.name].attributes

    def pointer_of(slot: Slot) -> str:
        configured = recipe_plan.decisions[slot.name].configured_by
        return "" if configured is None else f"/quantize/quant_cfg/{configured}/cfg"

    return survey(recipe_plan.owners, attributes_of, pointer_of)


def survey_model(model: nn.Module) -> ExportPlan:
    """The export plan of a model carrying installed quantizers (read from the quantizers)."""

    def attributes_of(slot: Slot) -> Attributes:
        quantizer = model.get_submodule(slot.name)
        if not isinstance(quantizer, (TensorQuantizer, SequentialQuantizer)):
            raise TypeError(f"{slot.name} is not a quantizer")
        return quantizer.attributes

    owners = [owner for owner in plan(model) if _installed(model, owner)]
    return survey(owners, attributes_of, lambda slot: "")


def _installed(model: nn.Module, owner: Owner) -> bool:
    try:
        model.get_submodule(owner.slots[0].name)
    except AttributeError:
        return False
    return True
