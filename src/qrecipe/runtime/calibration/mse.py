"""``mse``: ``max`` first, then a search for the weight amax with the smallest error.

For each weight quantizer, the amax multiplier in ``start_multiplier, start_multiplier +
step_size, ..., stop_multiplier`` (and 1) minimising the squared fake-quantization error of the
weight. The choice is made per element of ``amax`` (per channel, for per-channel formats) where
amax lines up with the weight, else per tensor.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from ..kernels import fake_quant
from ..quantizer import TensorQuantizer
from ..timing import timed
from .base import MIN_PROGRESS_ITEMS, Algorithm, Calibration, OptionRule, Stages
from .max import calibrate_max
from .options import COMMON_OPTIONS, false_only, positive_or_null

OPTIONS: dict[str, OptionRule] = {
    **COMMON_OPTIONS,
    "step_size": positive_or_null,
    "start_multiplier": positive_or_null,
    "stop_multiplier": positive_or_null,
    "fp8_scale_sweep": false_only,
}


def calibrate_mse(calibration: Calibration) -> None:
    """Calibrate with ``max``, then search each weight quantizer's amax."""
    calibrate_max(calibration)
    with timed(calibration.result.timings, "mse_search"):
        targets: Stages = [
            (slot, quantizer)
            for slot, quantizer in calibration.placed
            if slot.tensor is not None
            # Sequences keep their max calibration: the error of one stage depends on the others.
            and isinstance(quantizer, TensorQuantizer)
            and quantizer.enabled
            and quantizer.needs_calibration
            and quantizer.amax is not None
        ]
        multipliers = _multipliers(calibration.algorithm)
        with torch.no_grad():
            for slot, quantizer in tqdm(
                targets,
                desc="mse search",
                unit="quantizer",
                disable=not calibration.progress or len(targets) < MIN_PROGRESS_ITEMS,
            ):
                quantizer.amax = _best_amax(quantizer, slot.weight(), multipliers)


def _multipliers(algorithm: dict[str, Any]) -> list[float]:
    start = float(algorithm.get("start_multiplier") or 0.25)
    stop = float(algorithm.get("stop_multiplier") or 4.0)
    step = float(algorithm.get("step_size") or 0.1)
    count = math.ceil((stop - start) / step) + 1
    # The max-calibrated amax itself (multiplier 1) is always a candidate, so the search can
    # only lower the error.
    return sorted({min(start + i * step, stop) for i in range(count)} | {1.0})


def _best_amax(
    quantizer: TensorQuantizer, weight: torch.Tensor, multipliers: list[float]
) -> torch.Tensor:
    reference = weight.float()
    base = quantizer.amax
    if base is None:
        raise ValueError("the mse search starts from a max-calibrated amax")
    best_amax = base.clone()
    best_error: torch.Tensor | None = None
    for multiplier in multipliers:
        candidate = base * multiplier
        quantized = fake_quant(weight, quantizer.fmt, amax=candidate, backend=quantizer.backend)
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
    return best_amax.reshape(base.shape)


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


MSE = Algorithm("mse", OPTIONS, calibrate_mse)
