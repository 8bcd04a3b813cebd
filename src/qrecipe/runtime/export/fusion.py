"""Layers that read the same input share their scales, as serving engines fuse them.

Engines run the query/key/value projections (and gate/up) as one matrix product, so those
layers need one input scale and, for NVFP4 and W4A8 weights, one per-tensor weight scale.
ModelOpt's exporter finds the groups by running the model once and unifies each group's
per-tensor amax to the group's largest; this does the same, and it changes the quantizers in
the model too, so that the model in memory computes exactly what the checkpoint holds.

FP8 layers keep their own scales (engines requantize them on loading), as in ModelOpt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ..placement import iter_quantizers
from ..placement.base import quantizer_at
from ..quantizer import AnyQuantizer, TensorQuantizer, iter_stages
from .schemes import Scheme, Unexportable
from .tensors import pre_quant_scale

EXAMPLE_TOKENS = 2
"""Length of the token sequence of the probing forward pass."""


def shared_input_groups(
    model: nn.Module, layers: Mapping[str, nn.Module], example: Mapping[str, Any] | None = None
) -> list[list[str]]:
    """Names of the layers (among ``layers``) that receive the very same input tensor.

    One forward pass with ``example`` (keyword arguments; default: two tokens of id 1), with
    the quantizers switched off (the grouping does not depend on them). Groups of one are left
    out.
    """
    seen: dict[torch.Tensor, list[str]] = {}
    names = {id(module): name for name, module in layers.items()}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.setdefault(args[0], []).append(names[id(module)])

    # Prepended: the hook must see the input before a quantizer's hook replaces it.
    handles = [m.register_forward_pre_hook(record, prepend=True) for m in layers.values()]
    try:
        with torch.no_grad(), quantizers_off(model):
            model(**(dict(example) if example is not None else _example(model)))
    finally:
        for handle in handles:
            handle.remove()
    return [group for group in seen.values() if len(group) > 1]


@contextlib.contextmanager
def quantizers_off(model: nn.Module) -> Iterator[None]:
    """Every quantizer of ``model`` passes tensors through inside the block (a plain forward)."""
    stages = [stage for _, q in iter_quantizers(model) for stage in iter_stages(q) if stage.enabled]
    for stage in stages:
        stage.set_enabled(False)
    try:
        yield
    finally:
        for stage in stages:
            stage.set_enabled(True)


def _example(model: nn.Module) -> dict[str, Any]:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return {"input_ids": torch.ones((1, EXAMPLE_TOKENS), dtype=torch.long, device=device)}


def check_groups(groups: list[list[str]], schemes: Mapping[str, Scheme | None]) -> None:
    """Refuse groups of fused layers whose schemes differ (engines cannot fuse them)."""
    for group in groups:
        found = {schemes.get(name) for name in group}
        if len(found) > 1:
            shown = ", ".join(f"{name} ({_algo(schemes.get(name))})" for name in group)
            raise Unexportable(
                f"layers that share an input (fused by serving engines) are quantized in "
                f"different formats: {shown}"
            )


def _algo(scheme: Scheme | None) -> str:
    return "unquantized" if scheme is None else scheme.algo


def unify_scales(
    model: nn.Module, groups: list[list[str]], schemes: Mapping[str, Scheme | None]
) -> list[list[str]]:
    """Give each group of fused layers one input amax and one per-tensor weight amax.

    Returns the groups that were unified (those whose scheme has scales to share).
    """
    unified = []
    for group in groups:
        scheme = schemes.get(group[0])
        if scheme is None or scheme.algo == "FP8":
            continue
        modules = [model.get_submodule(name) for name in group]
        _check_smoothing(group, modules)
        _unify([quantizer_at(m, "input_quantizer") for m in modules], first_stage=True)
        weights = [quantizer_at(m, "weight_quantizer") for m in modules]
        if scheme.weight == "int4_fp8":
            _unify(weights, first_stage=False)
        elif scheme.weight == "nvfp4":
            _unify(weights, first_stage=True)
        unified.append(group)
    return unified


def _check_smoothing(group: list[str], modules: list[nn.Module]) -> None:
    """Refuse fused layers whose AWQ pre-quantization scales differ (one GEMM, one scale)."""
    scales = [pre_quant_scale(quantizer_at(m, "input_quantizer")) for m in modules]
    present = [scale for scale in scales if scale is not None]
    if not present:
        return
    if len(present) != len(scales) or any(not torch.equal(present[0], s) for s in present[1:]):
        raise Unexportable(
            f"layers that share an input (fused by serving engines) have different AWQ "
            f"pre_quant_scale: {', '.join(group)} (folding them into the preceding layer is "
            "not supported)"
        )


def _unify(quantizers: list[AnyQuantizer], *, first_stage: bool) -> None:
    """Set the per-tensor amax of one stage of each quantizer to the largest among them."""
    stages: list[TensorQuantizer] = []
    amaxes: list[torch.Tensor] = []
    for quantizer in quantizers:
        enabled = [s for s in iter_stages(quantizer) if s.enabled]
        if not enabled:
            continue
        stage = enabled[0] if first_stage else enabled[-1]
        if stage.amax is None or stage.amax.numel() != 1:
            return
        stages.append(stage)
        amaxes.append(stage.amax)
    if not stages:
        return
    largest = torch.stack([amax.reshape(()) for amax in amaxes]).max()
    for stage, amax in zip(stages, amaxes, strict=True):
        if not torch.equal(amax, largest.reshape(amax.shape)):
            stage.amax = largest.reshape(amax.shape)
