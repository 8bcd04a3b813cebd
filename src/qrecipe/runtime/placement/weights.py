"""Fake-quantized weights for the duration of one forward call.

The parameter entry itself is swapped (not the attribute), so that the module's own forward,
whatever it is, reads the quantized tensor; the post-hook puts the original back. When the
quantizer's ``cache_weights`` is on, quantized weights are kept while neither the weight nor the
quantizer changes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..quantizer import AnyQuantizer, iter_stages

# Owner attribute holding the original parameters while a forward call runs.
STASH_ATTR = "_qrecipe_stash"

_WEIGHT_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[Any, ...], torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def parameter(module: nn.Module, name: str) -> torch.Tensor:
    """The parameter ``name`` of ``module`` (which must exist)."""
    value = module._parameters[name]
    if value is None:
        raise ValueError(f"{type(module).__name__}.{name} is None")
    return value


def quantize_weight(
    quantizer: AnyQuantizer, weight: torch.Tensor, *, cache: bool = True
) -> torch.Tensor:
    """Fake-quantized ``weight``; reused across calls while weight and quantizer are unchanged.

    ``cache``: False for weights loaded afresh at every call (offloaded by accelerate): a kept
    copy would never be reused, and would hold in memory what offloading keeps on disk.
    """
    cacheable = (
        cache
        and quantizer.cache_weights
        and not (torch.is_grad_enabled() and weight.requires_grad)
        and not any(s._collector is not None for s in iter_stages(quantizer))
    )
    if not cacheable:
        quantized: torch.Tensor = quantizer(weight)
        return quantized
    key = (id(weight), weight._version, weight.device, weight.dtype, quantizer.state_token())
    cached = _WEIGHT_CACHE.get(quantizer)
    if cached is not None and cached[0] == key:
        return cached[1]
    result: torch.Tensor = quantizer(weight)
    _WEIGHT_CACHE[quantizer] = (key, result)
    return result


def forget_cached(quantizers: Iterable[AnyQuantizer]) -> None:
    """Drop the fake-quantized weights kept for ``quantizers`` (layer-by-layer calibration is
    done with a layer: keeping its copy would hold every layer's by the end)."""
    for quantizer in quantizers:
        _WEIGHT_CACHE.pop(quantizer, None)


def swap_in(module: nn.Module, name: str, quantized: torch.Tensor) -> None:
    """Put ``quantized`` in place of parameter ``name`` until :func:`restore` runs."""
    stash = module.__dict__.setdefault(STASH_ATTR, {})
    stash[name] = module._parameters[name]
    # A plain tensor stands in for the parameter: the table's declared value type is Parameter.
    parameters: dict[str, Any] = module._parameters
    parameters[name] = quantized


def restore(module: nn.Module) -> None:
    """Put back every parameter :func:`swap_in` replaced (nothing when there is none)."""
    stash = module.__dict__.pop(STASH_ATTR, None)
    if stash:
        for name, original in stash.items():
            module._parameters[name] = original
