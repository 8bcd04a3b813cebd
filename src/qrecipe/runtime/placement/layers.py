"""Linear-like layers, embeddings, normalisation and pooling: weight, input and output quantizers.

* ``nn.Linear``, ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``:
  ``<module>.input_quantizer``, ``<module>.weight_quantizer``, ``<module>.output_quantizer``.
* ``nn.Embedding``: ``<module>.weight_quantizer`` and ``<module>.output_quantizer`` (its input
  is integer indices, which cannot be quantized).
* Normalisation, pooling and ``nn.LeakyReLU`` layers: ``<module>.input_quantizer`` and
  ``<module>.output_quantizer`` (so that ``parent_class: nn.BatchNorm2d`` exclusions apply).

A forward pre-hook quantizes the input and swaps in the fake-quantized weight; a forward hook
(always called, even when the forward raises) puts the weight back and quantizes the output.
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
        super().remove(module)


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
    if wiring.weight is not None:
        quantizer = quantizer_at(module, wiring.weight)
        if is_active(quantizer):
            original = weights.parameter(module, "weight")
            weights.swap_in(module, "weight", weights.quantize_weight(quantizer, original))
    if wiring.input is not None:
        args, kwargs = quantize_input(module, wiring.input, args, kwargs)
    return args, kwargs


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
