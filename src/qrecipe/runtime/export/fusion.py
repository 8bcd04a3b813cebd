"""Layers that read the same input share their scales, as serving engines fuse them.

Engines run the query/key/value projections (and gate/up) as one matrix product, so those
layers need one input scale and, for NVFP4 and W4A8 weights, one per-tensor weight scale.
ModelOpt's exporter finds the groups by running the model once and unifies each group's
per-tensor amax to the group's largest; this does the same, and it changes the quantizers in
the model too, so that the model in memory computes exactly what the checkpoint holds.

AWQ groups (INT4 weights) also get one ``pre_quant_scale``: the group's mean, each weight
rescaled by its old scale over the mean and its amax calibrated again; when the group reads the
output of a LayerNorm/RMSNorm, the scale is then folded into the norm's weight (and bias) and
leaves the layers, as ModelOpt's exporter does.

FP8 layers keep their own scales (engines requantize them on loading), as in ModelOpt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..calibration.smoothing import recalibrate_weight
from ..placement import iter_quantizers
from ..placement.base import quantizer_at
from ..placement.weights import parameter
from ..quantizer import AnyQuantizer, TensorQuantizer, iter_stages
from .schemes import Scheme, Unexportable
from .tensors import pre_quant_scale

EXAMPLE_TOKENS = 2
"""Length of the token sequence of the probing forward pass."""


@dataclass
class InputGroup:
    """Layers that receive the very same input tensor, and the norm that produced it."""

    names: list[str]
    norm: str | None = None
    """The LayerNorm/RMSNorm module whose output the layers read, if any."""


def is_norm(module: nn.Module) -> bool:
    """A layer norm, by its class name (as ModelOpt's exporter recognises them)."""
    return any(kind in type(module).__name__ for kind in ("LayerNorm", "RMSNorm"))


def shared_input_groups(
    model: nn.Module, layers: Mapping[str, nn.Module], example: Mapping[str, Any] | None = None
) -> list[InputGroup]:
    """The layers (among ``layers``) that receive the very same input tensor, in groups.

    One forward pass with ``example`` (keyword arguments; default: two tokens of id 1), with
    the quantizers switched off (the grouping does not depend on them). Groups of one are left
    out.
    """
    seen: dict[torch.Tensor, list[str]] = {}
    produced: dict[torch.Tensor, str] = {}
    names = {id(module): name for name, module in layers.items()}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.setdefault(args[0], []).append(names[id(module)])

    def record_norm(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if isinstance(output, torch.Tensor):
                produced[output] = name

        return hook

    # Prepended: the hook must see the input before a quantizer's hook replaces it.
    handles = [m.register_forward_pre_hook(record, prepend=True) for m in layers.values()]
    handles += [
        module.register_forward_hook(record_norm(name))
        for name, module in model.named_modules()
        if is_norm(module)
    ]
    try:
        with torch.no_grad(), quantizers_off(model):
            model(**(dict(example) if example is not None else _example(model)))
    finally:
        for handle in handles:
            handle.remove()
    return [
        InputGroup(group, produced.get(tensor)) for tensor, group in seen.items() if len(group) > 1
    ]


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


def check_groups(groups: list[InputGroup], schemes: Mapping[str, Scheme | None]) -> None:
    """Refuse groups of fused layers whose schemes differ (engines cannot fuse them)."""
    for group in groups:
        found = {schemes.get(name) for name in group.names}
        if len(found) > 1:
            shown = ", ".join(f"{name} ({_algo(schemes.get(name))})" for name in group.names)
            raise Unexportable(
                f"layers that share an input (fused by serving engines) are quantized in "
                f"different formats: {shown}"
            )


def _algo(scheme: Scheme | None) -> str:
    return "unquantized" if scheme is None else scheme.algo


def unify_scales(
    model: nn.Module, groups: list[InputGroup], schemes: Mapping[str, Scheme | None]
) -> list[list[str]]:
    """Give each group of fused layers one input amax, one per-tensor weight amax and (AWQ)
    one pre-quantization scale, folded into the norm before them where there is one.

    Returns the names of the groups that were changed (those whose scheme has scales to share).
    """
    unified = []
    for group in groups:
        scheme = schemes.get(group.names[0])
        if scheme is None or scheme.algo == "FP8":
            continue
        modules = [model.get_submodule(name) for name in group.names]
        smoothed = _resmooth(modules)
        _unify([quantizer_at(m, "input_quantizer") for m in modules], first_stage=True)
        weights = [quantizer_at(m, "weight_quantizer") for m in modules]
        if scheme.weight == "int4_fp8":
            _unify(weights, first_stage=False)
        elif scheme.weight == "nvfp4":
            _unify(weights, first_stage=True)
        if smoothed and group.norm is not None and scheme.weight in ("int4", "int4_fp8"):
            _fold_into_norm(model.get_submodule(group.norm), modules)
        unified.append(group.names)
    return unified


def _input_stages(module: nn.Module) -> list[TensorQuantizer]:
    return iter_stages(quantizer_at(module, "input_quantizer"))


def _resmooth(modules: list[nn.Module]) -> bool:
    """One pre-quantization scale for the group (the mean), each weight rescaled to keep its
    product; returns whether the layers carry one."""
    scales = [pre_quant_scale(quantizer_at(m, "input_quantizer")) for m in modules]
    present = [scale for scale in scales if scale is not None]
    if not present:
        return False
    if len(present) != len(scales):
        raise Unexportable(
            "layers that share an input (fused by serving engines) where only some carry an "
            "AWQ pre_quant_scale"
        )
    mean = torch.stack(present).mean(dim=0)
    for module, scale in zip(modules, present, strict=True):
        if torch.equal(scale, mean):
            continue
        weight = parameter(module, "weight")
        # In float32, as the reference does: the weight times its old scale over the new one.
        rescaled = weight.detach().float() * scale.float().to(weight.device)
        rescaled = rescaled / mean.float().to(weight.device)
        module.weight = nn.Parameter(rescaled.to(weight.dtype), requires_grad=weight.requires_grad)
        _input_stages(module)[0].pre_quant_scale = mean
        recalibrate_weight(quantizer_at(module, "weight_quantizer"), parameter(module, "weight"))
    return True


def _fold_into_norm(norm: nn.Module, modules: list[nn.Module]) -> None:
    """Multiply the norm's output by the group's pre-quantization scale, and drop the scale."""
    first = pre_quant_scale(quantizer_at(modules[0], "input_quantizer"))
    weight = getattr(norm, "weight", None)
    if first is None or not isinstance(weight, torch.Tensor):
        return
    scale = first.to(weight.device)
    # Norms that scale by 1 + weight fold the scale into the effective weight.
    folded = (weight + 1.0) * scale - 1.0 if _weight_plus_one(norm) else weight * scale
    norm.weight = nn.Parameter(folded.to(weight.dtype).detach(), requires_grad=False)
    bias = getattr(norm, "bias", None)
    if isinstance(bias, torch.Tensor):
        norm.bias = nn.Parameter((bias * scale).detach(), requires_grad=False)
    for module in modules:
        for stage in _input_stages(module):
            stage.pre_quant_scale = None


def _weight_plus_one(norm: nn.Module) -> bool:
    """Norms that scale by ``1 + weight`` (Gemma's)."""
    kinds = ("LayerNorm1P", "GemmaRMSNorm", "Gemma2RMSNorm", "Gemma3RMSNorm")
    return any(kind in type(norm).__name__ for kind in kinds) or bool(
        getattr(norm, "zero_centered_gamma", False)
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
