"""Calibration: giving static quantizers their ``amax``.

* ``max``: weights are calibrated straight from the weight tensors; activations collect the
  running maximum of :func:`~qrecipe.runtime.kernels.reduce_amax` over the forward passes of
  ``forward_loop(model)``. While data is collected nothing is quantized, so every layer sees
  the full-precision model (as in the reference).
* ``mse``: ``max`` first, then, for each weight quantizer, the amax multiplier in
  ``start_multiplier, start_multiplier + step_size, ..., stop_multiplier`` (and 1) minimising the
  squared fake-quantization error of the weight. The choice is made per element of ``amax``
  (per channel, for per-channel formats) where amax lines up with the weight, else per tensor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .kernels import fake_quant, reduce_amax
from .placement import Slot
from .quantizer import AnyQuantizer, SequentialQuantizer, TensorQuantizer, iter_stages

ForwardLoop = Callable[[nn.Module], Any]

# Options each method understands, with the values under which this runtime behaves like the
# reference. Anything else is refused before the model is touched (see apply.py).
MAX_OPTIONS = {
    "distributed_sync",
    "sync_expert_weight_amax",
    "skip_forward_without_activation_calib",
    "layerwise",
    "moe_calib_experts_ratio",
    "shared_states",
}
MSE_OPTIONS = {
    "distributed_sync",
    "step_size",
    "start_multiplier",
    "stop_multiplier",
    "fp8_scale_sweep",
    "layerwise",
    "moe_calib_experts_ratio",
    "shared_states",
}


@dataclass
class CalibrationResult:
    """What calibration did: timings by phase and anything the user should know."""

    timings: dict[str, float]
    warnings: list[str]
    batches: int = 0


class _MaxCollector:
    """Running maximum of the calibration statistic of every tensor a quantizer sees."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.amax: torch.Tensor | None = None

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        statistic = reduce_amax(x.detach(), quantizer.fmt).float()
        if self.amax is None:
            self.amax = statistic
        elif statistic.shape != self.amax.shape:
            raise RuntimeError(
                f"{self.name}: the calibration statistic changed shape between batches "
                f"({tuple(self.amax.shape)} then {tuple(statistic.shape)}); a static per-block "
                "or per-token format needs inputs of one shape"
            )
        else:
            self.amax = torch.maximum(self.amax, statistic.to(self.amax.device))


def _pass_through(quantizer: TensorQuantizer, x: torch.Tensor) -> None:
    """Collector of quantizers that take no data: they stay out of the way while calibrating."""


def weight_tensor(slot: Slot) -> torch.Tensor:
    """The (unquantized) tensor a weight quantizer quantizes, in its quantization layout."""
    assert slot.tensor is not None
    weight = slot.parent._parameters[slot.tensor]
    assert weight is not None
    if slot.expert is None:
        return weight.detach()
    piece = weight.detach()[slot.expert]
    wiring = slot.parent.__dict__.get("_qrecipe_wiring", {})
    return piece.transpose(-1, -2) if wiring.get("transposed") else piece


def calibrate(
    model: nn.Module,
    placed: list[tuple[Slot, AnyQuantizer]],
    algorithm: dict[str, Any] | None,
    forward_loop: ForwardLoop | None,
    *,
    progress: bool = True,
) -> CalibrationResult:
    """Calibrate the placed quantizers in place."""
    result = CalibrationResult(timings={}, warnings=[])
    if algorithm is None:
        pending = [
            slot.name
            for slot, quantizer in placed
            if any(s.enabled and s.needs_calibration for s in iter_stages(quantizer))
        ]
        if pending:
            result.warnings.append(
                f"algorithm is null: {len(pending)} static quantizer(s) are not calibrated and "
                "take amax from each tensor at run time"
            )
        return result

    weights: list[tuple[Slot, TensorQuantizer]] = []
    activations: list[tuple[Slot, TensorQuantizer]] = []
    for slot, quantizer in placed:
        for stage in iter_stages(quantizer):
            if not (stage.enabled and stage.needs_calibration):
                continue
            (weights if slot.tensor is not None else activations).append((slot, stage))

    started = time.perf_counter()
    with torch.no_grad():
        for slot, stage in tqdm(
            weights, desc="calibrating weights", unit="quantizer", disable=not progress
        ):
            stage.amax = reduce_amax(weight_tensor(slot), stage.fmt).float()
    result.timings["calibrate_weights"] = time.perf_counter() - started

    started = time.perf_counter()
    skip_forward = bool(algorithm.get("skip_forward_without_activation_calib")) and not activations
    if activations and forward_loop is None:
        result.warnings.append(
            f"no forward_loop given: {len(activations)} activation quantizer(s) are not "
            "calibrated and take amax from each tensor at run time"
        )
    elif forward_loop is not None and not skip_forward:
        result.batches = _collect_activations(model, placed, activations, forward_loop, progress)
        for slot, stage in activations:
            collector = getattr(stage, "_calibration", None)
            if isinstance(collector, _MaxCollector) and collector.amax is not None:
                stage.amax = collector.amax
            else:
                result.warnings.append(
                    f"{slot.name}: no calibration data reached this quantizer; it takes amax "
                    "from each tensor at run time"
                )
            stage.__dict__.pop("_calibration", None)
    result.timings["calibrate_activations"] = time.perf_counter() - started

    if algorithm.get("method") == "mse":
        started = time.perf_counter()
        _mse_weights(placed, algorithm, progress)
        result.timings["mse_search"] = time.perf_counter() - started
    return result


def _collect_activations(
    model: nn.Module,
    placed: list[tuple[Slot, AnyQuantizer]],
    activations: list[tuple[Slot, TensorQuantizer]],
    forward_loop: ForwardLoop,
    progress: bool,
) -> int:
    collecting = {id(stage) for _, stage in activations}
    stages = [stage for _, quantizer in placed for stage in iter_stages(quantizer)]
    for slot, stage in activations:
        stage.__dict__["_calibration"] = _MaxCollector(slot.name)
    bar = tqdm(desc="calibrating activations", unit="batch", disable=not progress)
    batches = 0

    def count_batch(module: nn.Module, args: Any, output: Any) -> None:
        nonlocal batches
        batches += 1
        bar.update(1)

    handle = model.register_forward_hook(count_batch)
    try:
        for stage in stages:
            stage._collector = (
                stage.__dict__["_calibration"] if id(stage) in collecting else _pass_through
            )
        with torch.no_grad():
            forward_loop(model)
    finally:
        handle.remove()
        bar.close()
        for stage in stages:
            stage._collector = None
    return batches


def _reduce_to(error: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """Sum ``error`` down to ``shape`` when ``shape`` broadcasts against it, else None."""
    if len(shape) == 0:
        return error.sum()
    if len(shape) != error.dim():
        return None
    dims = []
    for axis, (size, full) in enumerate(zip(shape, error.shape, strict=True)):
        if size == 1 and full != 1:
            dims.append(axis)
        elif size != full:
            return None
    return error.sum(dim=dims, keepdim=True) if dims else error


def _mse_weights(
    placed: list[tuple[Slot, AnyQuantizer]], algorithm: dict[str, Any], progress: bool
) -> None:
    start = float(algorithm.get("start_multiplier") or 0.25)
    stop = float(algorithm.get("stop_multiplier") or 4.0)
    step = float(algorithm.get("step_size") or 0.1)
    count = math.ceil((stop - start) / step) + 1
    # The max-calibrated amax itself (multiplier 1) is always a candidate, so the search can
    # only lower the error.
    multipliers = sorted({min(start + i * step, stop) for i in range(count)} | {1.0})
    targets = [
        (slot, quantizer)
        for slot, quantizer in placed
        if slot.tensor is not None
        # Sequences keep their max calibration: the error of one stage depends on the others.
        and not isinstance(quantizer, SequentialQuantizer)
        and quantizer.enabled
        and quantizer.needs_calibration
        and quantizer.amax is not None
    ]
    with torch.no_grad():
        for slot, quantizer in tqdm(
            targets, desc="mse search", unit="quantizer", disable=not progress
        ):
            assert isinstance(quantizer, TensorQuantizer)
            weight = weight_tensor(slot)
            reference = weight.float()
            base = quantizer.amax
            assert base is not None
            best_amax = base.clone()
            best_error: torch.Tensor | None = None
            for multiplier in multipliers:
                candidate = base * multiplier
                quantized = fake_quant(
                    weight, quantizer.fmt, amax=candidate, backend=quantizer.backend
                )
                error = (quantized.float() - reference).square()
                per_element = _reduce_to(error, candidate.shape)
                if per_element is None:
                    per_element = error.sum()
                if best_error is None:
                    best_error, best_amax = per_element, candidate.clone()
                    continue
                better = per_element < best_error
                best_error = torch.where(better, per_element, best_error)
                best_amax = torch.where(better, candidate, best_amax)
            quantizer.amax = best_amax.reshape(base.shape)
