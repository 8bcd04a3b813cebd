"""Linear-like layers, embeddings, normalisation and pooling: weight, input and output quantizers.

* ``nn.Linear``, ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``:
  ``<module>.input_quantizer``, ``<module>.weight_quantizer``, ``<module>.output_quantizer``.
* ``nn.Embedding``: ``<module>.weight_quantizer`` and ``<module>.output_quantizer`` (its input
  is integer indices, which cannot be quantized).
* Normalisation, pooling and ``nn.LeakyReLU`` layers: ``<module>.input_quantizer`` and
  ``<module>.output_quantizer`` (so that ``parent_class: nn.BatchNorm2d`` exclusions apply).

A forward pre-hook quantizes the input and swaps in the fake-quantized weight; a forward hook
(always called, even when the forward raises) puts the weight back and quantizes the output.

A layer whose weights accelerate offloads (``device_map`` with CPU or disk offload) only has
them inside its forward, between accelerate's own loading and offloading steps: its
accelerate hook is wrapped (:class:`OffloadedWeightHook`) so that the weight is swapped in just
after accelerate loads it and put back just before accelerate drops it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..attributes import default_attributes
from ..quantizer import AnyQuantizer
from . import weights
from .base import HookArgs, Owner, Placement, Wiring, is_active, quantize_input, quantizer_at

LINEAR_LIKE = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
INPUT_ONLY = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LeakyReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)


@dataclass(kw_only=True)
class LayerWiring(Wiring):
    """The quantizer attributes of one layer (None where the layer has no such quantizer)."""

    weight: str | None = None
    input: str | None = None
    output: str | None = None

    def remove(self, module: nn.Module) -> None:
        weights.restore(module)
        hook = module.__dict__.get("_hf_hook")
        if isinstance(hook, OffloadedWeightHook):
            module.__dict__["_hf_hook"] = hook.inner
        super().remove(module)


def loads_its_own_weights(module: nn.Module) -> bool:
    """Whether an accelerate hook loads the module's weights at each forward (offloading)."""
    hook = module.__dict__.get("_hf_hook")
    return _offloading(hook)


def _offloading(hook: Any) -> bool:
    if hook is None:
        return False
    if getattr(hook, "offload", False) and getattr(hook, "weights_map", None) is not None:
        return True
    return any(_offloading(inner) for inner in getattr(hook, "hooks", ()))


class OffloadedWeightHook:
    """Wraps the accelerate hook of an offloaded layer: the quantized weight is swapped in right
    after accelerate loads the weights and swapped out right before it offloads them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def hooks(self) -> tuple[Any, ...]:
        """The wrapped hook, where code looking for accelerate's offload hook finds it."""
        return (self.inner,)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)

    def pre_forward(self, module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        result = self.inner.pre_forward(module, *args, **kwargs)
        _swap_in_weight(module, cache=False)
        return result

    def post_forward(self, module: nn.Module, output: Any) -> Any:
        weights.restore(module)
        return self.inner.post_forward(module, output)


class Layers(Placement):
    """Layers with a ``weight`` parameter, and layers whose input and output are quantized."""

    kind = "layer"

    def plan(self, name: str, module: nn.Module) -> Owner | None:
        owner = Owner(name, module, self)
        disabled = default_attributes(enable=False)
        if isinstance(module, LINEAR_LIKE):
            owner.add("input_quantizer", "input")
            owner.add("output_quantizer", "output", disabled)
            owner.add("weight_quantizer", "weight", default_attributes(axis=0), tensor="weight")
        elif isinstance(module, nn.Embedding):
            owner.add("output_quantizer", "output", disabled)
            owner.add("weight_quantizer", "weight", tensor="weight")
        elif isinstance(module, INPUT_ONLY):
            owner.add("input_quantizer", "input")
            owner.add("output_quantizer", "output", disabled)
        else:
            return None
        return owner

    def install(self, owner: Owner, quantizers: Mapping[str, AnyQuantizer]) -> Wiring:
        module = owner.module
        roles = {slot.role: slot.attr for slot in owner.slots}
        wiring = LayerWiring(
            weight=roles.get("weight"), input=roles.get("input"), output=roles.get("output")
        )
        for slot in owner.slots:
            wiring.attach(module, slot.attr, quantizers[slot.name])
        if wiring.weight is not None and loads_its_own_weights(module):
            module.__dict__["_hf_hook"] = OffloadedWeightHook(module.__dict__["_hf_hook"])
        wiring.handles += [
            module.register_forward_pre_hook(_pre_hook, with_kwargs=True),
            module.register_forward_hook(_post_hook, with_kwargs=True, always_call=True),
        ]
        return wiring


# Hooks are plain module-level functions so that quantized models stay picklable.


def _pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HookArgs | None:
    """Quantize the input and swap in the fake-quantized weight before ``module`` runs."""
    wiring = LayerWiring.of(module)
    if wiring is None:
        return None
    if not isinstance(module.__dict__.get("_hf_hook"), OffloadedWeightHook):
        _swap_in_weight(module)
    if wiring.input is not None:
        args, kwargs = quantize_input(module, wiring.input, args, kwargs)
    return args, kwargs


def _swap_in_weight(module: nn.Module, *, cache: bool = True) -> None:
    wiring = LayerWiring.of(module)
    if wiring is None or wiring.weight is None:
        return
    quantizer = quantizer_at(module, wiring.weight)
    if is_active(quantizer):
        original = weights.parameter(module, "weight")
        weights.swap_in(module, "weight", weights.quantize_weight(quantizer, original, cache=cache))


def _post_hook(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> Any:
    """Put the original weight back and quantize the output after ``module`` ran."""
    weights.restore(module)
    wiring = LayerWiring.of(module)
    if wiring is None or wiring.output is None or output is None:
        return None
    quantizer = quantizer_at(module, wiring.output)
    if not is_active(quantizer):
        return None
    if isinstance(output, torch.Tensor):
        return quantizer(output)
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return (quantizer(output[0]), *output[1:])
    return None
