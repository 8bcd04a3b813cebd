"""``mse``: ``max`` first, then a search for each weight amax with the smallest squared error.

As in the reference, for each enabled static weight quantizer (single-stage, not MX):

* **multipliers** (default): the candidates are ``linspace(start_multiplier,
  stop_multiplier, ceil((stop - start) / step_size) + 1)`` times the max-calibrated amax; each
  group of the amax (tensor, channel or block) keeps the candidate whose fake-quantized weight
  has the smallest sum of squared errors over the group (the first such candidate on ties).
  Dynamic NVFP4 weights search their per-tensor amax.
* **fp8_scale_sweep: true**: static NVFP4 weights only (every other weight quantizer keeps its
  max amax): the per-tensor amax ``G`` stays fixed and each 16-value block tries every positive
  FP8 E4M3 value ``v`` as its block scale, that is block amax ``G * v / 448``, keeping the one
  with the smallest squared error.

Errors are measured on the weight in float32, as the reference does.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional
from tqdm.auto import tqdm

from ..kernels import QuantFormat, fake_quant
from ..kernels.table import E4M3, E4M3_MAX
from ..quantizer import TensorQuantizer
from ..timing import timed
from .base import MIN_PROGRESS_ITEMS, Algorithm, Calibration, OptionRule, Stages
from .max import calibrate_max, is_static_nvfp4
from .options import COMMON_OPTIONS, accepted, positive_or_null, shared_states

OPTIONS: dict[str, OptionRule] = {
    **COMMON_OPTIONS,
    "shared_states": shared_states,
    "step_size": positive_or_null,
    "start_multiplier": positive_or_null,
    "stop_multiplier": positive_or_null,
    "fp8_scale_sweep": accepted,
}


def calibrate_mse(calibration: Calibration) -> None:
    """Calibrate with ``max``, then search each weight quantizer's amax."""
    calibrate_max(calibration)
    search_weights(calibration)


def search_weights(calibration: Calibration) -> None:
    """The MSE search over the weight quantizers (after max calibration)."""
    sweep = bool(calibration.algorithm.get("fp8_scale_sweep"))
    targets: Stages = [
        (slot, quantizer)
        for slot, quantizer in calibration.placed
        if slot.tensor is not None
        # Sequences keep their max calibration: the error of one stage depends on the others.
        and isinstance(quantizer, TensorQuantizer)
        and quantizer.enabled
        and quantizer.needs_calibration
        and quantizer.amax is not None
        and quantizer.fmt.scheme != "mx"
        and (is_static_nvfp4(quantizer) if sweep else True)
    ]
    multipliers = _multipliers(calibration)
    with timed(calibration.result.timings, "mse_search"), torch.no_grad():
        for slot, quantizer in tqdm(
            targets,
            desc="mse search",
            unit="quantizer",
            disable=not calibration.progress or len(targets) < MIN_PROGRESS_ITEMS,
        ):
            original = slot.weight()
            weight = original.float()
            if sweep:
                chosen = _sweep_fp8_scales(quantizer, weight)
                calibration.result.record(slot.name, fp8_scale_sweep=_summary(chosen))
            else:
                chosen = _search_multipliers(quantizer, weight, multipliers, original.dtype)
                calibration.result.record(slot.name, mse_multiplier=_summary(chosen))


def _multipliers(calibration: Calibration) -> torch.Tensor:
    start = float(calibration.option("start_multiplier", 0.25))
    stop = float(calibration.option("stop_multiplier", 4.0))
    step = float(calibration.option("step_size", 0.1))
    return torch.linspace(start, stop, steps=math.ceil((stop - start) / step) + 1)


def _summary(values: torch.Tensor) -> dict[str, float]:
    values = values.float()
    return {
        "min": float(values.min()),
        "mean": float(values.mean()),
        "max": float(values.max()),
    }


def group_sum(error: torch.Tensor, fmt: QuantFormat) -> torch.Tensor:
    """``error`` summed over each group that shares one amax (the amax's shape)."""
    shape = fmt.amax_shape(error.shape)
    if len(shape) == 0:
        return error.sum()
    if fmt.scheme == "channel":
        kept = fmt.kept_axes(error.dim())
        reduced = tuple(axis for axis in range(error.dim()) if axis not in kept)
        return error.sum(dim=reduced, keepdim=True) if reduced else error
    rows, cols = (1, fmt.block_size) if fmt.scheme == "nvfp4" else fmt.block_layout(error.shape)
    one_d = error.dim() == 1
    values = error.unsqueeze(0) if one_d else error
    *outer, height, width = values.shape
    down, across = -(-height // rows), -(-width // cols)
    padded = functional.pad(values, (0, across * cols - width, 0, down * rows - height))
    sums = padded.reshape(*outer, down, rows, across, cols).sum(dim=(-3, -1))
    return sums.squeeze(0) if one_d else sums


def _search_multipliers(
    quantizer: TensorQuantizer,
    weight: torch.Tensor,
    multipliers: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Set the best amax per group; returns the chosen multipliers.

    The reference holds the amax of per-tensor and per-channel weights in the weight's dtype
    (static blocks keep float32): candidates for an amax with several values are products in
    that dtype, and the chosen amax is rounded to it.
    """
    base = quantizer.amax
    if base is None:
        raise ValueError("the mse search starts from a max-calibrated amax")
    fmt = quantizer.fmt
    global_amax = quantizer.global_amax
    if fmt.scheme not in ("tensor", "channel"):
        dtype = torch.float32
    held = base if base.dim() == 0 else base.to(dtype)
    losses = []
    for multiplier in multipliers:
        quantized = fake_quant(
            weight,
            fmt,
            amax=held * multiplier,
            backend=quantizer.backend,
            global_amax=global_amax,
        )
        losses.append(group_sum((weight - quantized).square(), fmt).reshape(base.shape))
    best = torch.argmin(torch.stack(losses), dim=0)
    chosen = multipliers[best]
    quantizer.amax = (base * chosen).to(dtype)
    return chosen


def fp8_scale_candidates() -> torch.Tensor:
    """Every positive finite FP8 E4M3 value divided by 448, in increasing order (126 values)."""
    codes = torch.arange(1, 127, dtype=torch.int32)
    exponent = codes >> E4M3.mantissa_bits
    mantissa = (codes & ((1 << E4M3.mantissa_bits) - 1)).float()
    fraction = mantissa / (1 << E4M3.mantissa_bits)
    normal = torch.exp2((exponent - 7).float()) * (1 + fraction)
    subnormal = torch.exp2(torch.tensor(float(E4M3.min_normal_exponent))) * fraction
    values = torch.where(exponent == 0, subnormal, normal)
    return values / E4M3_MAX


def _sweep_fp8_scales(quantizer: TensorQuantizer, weight: torch.Tensor) -> torch.Tensor:
    """Set each block's amax to the best FP8 block scale under the fixed per-tensor amax."""
    base = quantizer.amax
    if base is None:
        raise ValueError("the FP8 scale sweep starts from a max-calibrated amax")
    fmt = quantizer.fmt
    global_amax = quantizer.global_amax
    if global_amax is None:
        global_amax = base.amax()
    candidates = fp8_scale_candidates()
    losses = []
    for candidate in candidates:
        amax = torch.ones_like(base) * (global_amax * candidate)
        quantized = fake_quant(
            weight, fmt, amax=amax, backend=quantizer.backend, global_amax=global_amax
        )
        losses.append(group_sum((weight - quantized).square(), fmt).reshape(base.shape))
    best = torch.argmin(torch.stack(losses), dim=0)
    chosen = candidates[best]
    quantizer.amax = torch.ones_like(base) * (global_amax * chosen)
    quantizer.global_amax = global_amax
    return chosen * E4M3_MAX


MSE = Algorithm("mse", OPTIONS, calibrate_mse)
