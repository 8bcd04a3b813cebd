"""Fused mixture-of-experts modules: one weight quantizer per expert, shared input quantizers.

Modules that store their experts as 3-D ``gate_up_proj`` (or ``up_proj``) and ``down_proj``
parameters, as in ``transformers`` 5, get ``<experts>.gate_up_proj_weight_quantizers.<i>`` and
``<experts>.down_proj_weight_quantizers.<i>`` (one per expert, each with its own amax), and
``<experts>.gate_up_proj_input_quantizer`` and ``<experts>.down_proj_input_quantizer``.

The weights are swapped for the duration of a forward call as for ordinary layers. The input
of ``down_proj`` exists only inside the experts' forward: while its quantizer is active,
``torch.nn.functional.linear`` is intercepted for that call (see
:class:`_SecondProjectionLinear`), and the experts run ``transformers``' eager implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..quantizer import AnyQuantizer
from . import weights
from .base import HookArgs, Owner, Placement, Wiring, is_active, quantize_input, quantizer_at

SECOND_PROJECTION = "down_proj"
SECOND_INPUT = "down_proj_input_quantizer"
# Fused-experts attribute holding the experts implementation replaced for one forward call.
IMPLEMENTATION_STASH_ATTR = "_qrecipe_experts_implementation"

Linear = Callable[..., torch.Tensor]


def fused_experts_first_projection(module: nn.Module) -> str | None:
    """``gate_up_proj``/``up_proj`` when ``module`` stores experts as 3-D parameters, else None."""
    down = module._parameters.get(SECOND_PROJECTION)
    if down is None or down.dim() != 3:
        return None
    for first in ("gate_up_proj", "up_proj"):
        weight = module._parameters.get(first)
        if weight is not None and weight.dim() == 3 and weight.shape[0] == down.shape[0]:
            return first
    return None


@dataclass(kw_only=True)
class ExpertsWiring(Wiring):
    """The quantizer attributes of one fused-experts module."""

    projections: list[tuple[str, str]] = field(default_factory=list)
    """(parameter, attribute of its list of per-expert quantizers), first projection first."""
    input: str
    transposed: bool = False

    def remove(self, module: nn.Module) -> None:
        weights.restore(module)
        _unpatch_linear(module)
        super().remove(module)


class FusedExperts(Placement):
    """Experts stored as 3-D parameters, quantized one expert slice at a time."""

    kind = "experts"

    def plan(self, name: str, module: nn.Module) -> Owner | None:
        first = fused_experts_first_projection(module)
        if first is None:
            return None
        experts = weights.parameter(module, SECOND_PROJECTION).shape[0]
        transposed = bool(getattr(module, "is_transposed", False))
        owner = Owner(name, module, self)
        for tensor in (first, SECOND_PROJECTION):
            owner.add(f"{tensor}_input_quantizer", "input")
            for index in range(experts):
                owner.add(
                    f"{tensor}_weight_quantizers.{index}",
                    "weight",
                    expert=index,
                    tensor=tensor,
                    transposed=transposed,
                )
        return owner

    def install(self, owner: Owner, quantizers: Mapping[str, AnyQuantizer]) -> Wiring:
        module = owner.module
        inputs = [slot for slot in owner.slots if slot.expert is None]
        first = inputs[0].attr.removesuffix("_input_quantizer")
        transposed = any(slot.transposed for slot in owner.slots)
        wiring = ExpertsWiring(input=inputs[0].attr, transposed=transposed)
        for slot in inputs:
            wiring.attach(module, slot.attr, quantizers[slot.name])
        for tensor in (first, SECOND_PROJECTION):
            per_expert = [quantizers[s.name] for s in owner.slots if s.tensor == tensor]
            attr = f"{tensor}_weight_quantizers"
            wiring.attach(module, attr, nn.ModuleList(per_expert))
            wiring.projections.append((tensor, attr))
        wiring.handles += [
            module.register_forward_pre_hook(_pre_hook, with_kwargs=True),
            module.register_forward_hook(_post_hook, with_kwargs=True, always_call=True),
        ]
        return wiring


def _expert_quantizers(module: nn.Module, attr: str) -> list[AnyQuantizer]:
    experts = module._modules.get(attr)
    if not isinstance(experts, nn.ModuleList):
        raise TypeError(f"{type(module).__name__}.{attr} is not a list of quantizers")
    return [quantizer_at(experts, str(index)) for index in range(len(experts))]


def _quantize_experts(
    weight: torch.Tensor, quantizers: list[AnyQuantizer], transposed: bool
) -> torch.Tensor:
    slices = []
    for index, quantizer in enumerate(quantizers):
        piece = weight[index]
        if not is_active(quantizer):
            slices.append(piece)
            continue
        # Quantize in (out_features, in_features) layout so blocks run along the input axis.
        if transposed:
            piece = weights.quantize_weight(quantizer, piece.transpose(-1, -2)).transpose(-1, -2)
        else:
            piece = weights.quantize_weight(quantizer, piece)
        slices.append(piece)
    return torch.stack(slices)


# Hooks are plain module-level functions so that quantized models stay picklable.


def _pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HookArgs | None:
    """Swap in the fake-quantized expert weights and quantize the input before the experts run."""
    wiring = ExpertsWiring.of(module)
    if wiring is None:
        return None
    for tensor, attr in wiring.projections:
        quantizers = _expert_quantizers(module, attr)
        if not any(is_active(q) for q in quantizers):
            continue
        original = weights.parameter(module, tensor)
        weights.swap_in(module, tensor, _quantize_experts(original, quantizers, wiring.transposed))
    args, kwargs = quantize_input(module, wiring.input, args, kwargs)
    if is_active(quantizer_at(module, SECOND_INPUT)):
        _patch_linear_for_second_projection(module)
    return args, kwargs


def _post_hook(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> None:
    """Put the original weights and ``F.linear`` back after the experts ran."""
    weights.restore(module)
    _unpatch_linear(module)


# -- the input of the second projection ------------------------------------------------------


class _SecondProjectionLinear:
    """Stands in for ``torch.nn.functional.linear`` while a fused-experts module runs.

    The experts' forward calls ``F.linear`` once per projection and expert; the call whose
    weight lives in the ``down_proj`` storage gets its input quantized. Every other call goes
    straight through.
    """

    def __init__(self, module: nn.Module, original: Linear) -> None:
        self.module = module
        self.original = original

    def __call__(self, input: torch.Tensor, weight: torch.Tensor, bias: Any = None) -> torch.Tensor:
        down = self.module._parameters[SECOND_PROJECTION]
        if (
            down is not None
            and weight.untyped_storage().data_ptr() == down.untyped_storage().data_ptr()
        ):
            input = quantizer_at(self.module, SECOND_INPUT)(input)
        return self.original(input, weight, bias)


def _patch_linear_for_second_projection(module: nn.Module) -> None:
    config = getattr(module, "config", None)
    implementation = getattr(config, "_experts_implementation", None)
    if config is not None and implementation not in (None, "eager"):
        # Only the eager implementation calls F.linear per expert, exposing the input of the
        # second projection; batched kernels never materialise it where a hook can reach it.
        # Switch to eager for this call only (the post-hook switches back).
        module.__dict__[IMPLEMENTATION_STASH_ATTR] = (config, implementation)
        config._experts_implementation = "eager"
    functional = torch.nn.functional
    functional.linear = _SecondProjectionLinear(module, functional.linear)


def _unpatch_linear(module: nn.Module) -> None:
    functional = torch.nn.functional
    current = functional.linear
    if isinstance(current, _SecondProjectionLinear) and current.module is module:
        functional.linear = current.original
    stashed = module.__dict__.pop(IMPLEMENTATION_STASH_ATTR, None)
    if stashed is not None:
        config, implementation = stashed
        config._experts_implementation = implementation
