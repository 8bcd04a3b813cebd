"""``nvfp4_act_headroom``: NVFP4 activation scales that leave headroom above the calibration data.

As in the reference, for every enabled dynamic NVFP4 input quantizer (E2M1 values, FP8 E4M3
block scales from the data, a calibrated per-tensor amax), the calibration pass builds a
histogram of ``log2`` of its per-block amaxes (512 bins over [-40, 40]). The per-tensor amax is

    amax = max(rho * anchor, upper)

where ``upper`` is the block amax at ``upper_percentile`` (100: the largest seen) and
``anchor`` the one at ``anchor_percentile``, ignoring blocks below ``upper / 1e6``; each is the
centre of its bin (``2 ** (-40 + (bin + 0.5) * 80 / 512)``). When ``rho * anchor`` is not above
``upper`` the report warns that no headroom is left. Every other quantizer, and the weights, are
calibrated by ``weight_scale_algorithm`` (``max``, or ``mse`` with its options).

Across processes the histograms are added and the largest block amaxes compared, so every rank
derives its scale from all the data (the reference takes the largest of the per-rank scales).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..kernels.reference import block_amax, finite_abs
from ..quantizer import Collector, SequentialQuantizer, TensorQuantizer
from ..timing import timed
from .base import Algorithm, Calibration, OptionRule
from .collect import all_reduce_max, all_reduce_sum
from .max import OPTIONS as MAX_OPTIONS
from .max import calibrate_max
from .mse import OPTIONS as MSE_OPTIONS
from .mse import search_weights
from .options import COMMON_OPTIONS

FP8_NORMAL_RANGE = 28672.0
"""FP8 E4M3's largest over its smallest normal value: rho must stay below it."""
ANCHOR_FLOOR_RATIO = 1e6
BINS = 512
LOG2_LOW = -40.0
LOG2_HIGH = 40.0


def _percentage(low_exclusive: float, high: float) -> OptionRule:
    def rule(option: str, value: Any) -> str | None:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and low_exclusive < value <= high:
            return None
        return f"option {option!r} must be a number in ({low_exclusive:g}, {high:g}]"

    return rule


def _rho(option: str, value: Any) -> str | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and 0 < value < FP8_NORMAL_RANGE:
        return None
    return f"option 'rho' must be a number in (0, {FP8_NORMAL_RANGE:g})"


def _weight_scale_algorithm(option: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return "option 'weight_scale_algorithm' must be an algorithm object"
    method = value.get("method")
    rules: Mapping[str, OptionRule] | None = {"max": MAX_OPTIONS, "mse": MSE_OPTIONS}.get(
        str(method)
    )
    if rules is None:
        return (
            f"weight_scale_algorithm {method!r} is not supported by the runtime; supported: max, "
            "mse"
        )
    for key, item in value.items():
        if key == "method":
            continue
        rule = rules.get(key)
        if rule is None:
            return f"weight_scale_algorithm: option {key!r} of {method!r} is not supported"
        problem = rule(key, item)
        if problem is not None:
            return f"weight_scale_algorithm: {problem}"
    return None


OPTIONS: dict[str, OptionRule] = {
    **COMMON_OPTIONS,
    "anchor_percentile": _percentage(0.0, 100.0),
    "upper_percentile": _percentage(0.0, 100.0),
    "rho": _rho,
    "weight_scale_algorithm": _weight_scale_algorithm,
}


def is_dynamic_nvfp4(stage: TensorQuantizer) -> bool:
    """An enabled NVFP4 quantizer with dynamic blocks and a calibrated per-tensor amax."""
    fmt = stage.fmt
    return stage.enabled and fmt.scheme == "nvfp4" and fmt.dynamic_blocks and not fmt.dynamic


def _bin_index(log2_values: torch.Tensor) -> torch.Tensor:
    fraction = (log2_values - LOG2_LOW) / (LOG2_HIGH - LOG2_LOW)
    return (fraction * BINS).floor().long().clamp_(0, BINS - 1)


class BlockHistogram:
    """Histogram of log2 of the per-block amax of every tensor a quantizer sees."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.counts: torch.Tensor | None = None
        self.largest: torch.Tensor | None = None

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        if x.numel() == 0:
            return
        blocks = block_amax(finite_abs(x.detach()), 1, self.block_size).flatten()
        top = blocks.max()
        self.largest = top if self.largest is None else torch.maximum(self.largest, top)
        nonzero = blocks[blocks > 0]
        if nonzero.numel() == 0:
            return
        counts = torch.bincount(_bin_index(torch.log2(nonzero)), minlength=BINS)
        if self.counts is None:
            self.counts = torch.zeros(BINS, dtype=torch.long, device=x.device)
        self.counts += counts.to(self.counts.device)

    def reduce(self, sync: bool) -> None:
        """Add the histograms and compare the largest block amaxes over the ranks."""
        counts = self.counts if self.counts is not None else torch.zeros(BINS, dtype=torch.long)
        largest = self.largest if self.largest is not None else torch.tensor(-1.0)
        counts = all_reduce_sum(counts.cpu(), sync)
        largest = all_reduce_max(largest.float().reshape(1).cpu(), sync).reshape(())
        self.counts = counts if int(counts.sum()) or self.counts is not None else None
        self.largest = largest if float(largest) >= 0 else None

    def percentile(self, percentile: float, floor: float | None = None) -> float | None:
        """The bin centre at ``percentile`` of the histogram (bins below ``floor`` ignored)."""
        if self.counts is None:
            return None
        counts = self.counts.float()
        if floor is not None and floor > 0:
            floor_bin = int(_bin_index(torch.log2(torch.tensor(floor))).item())
            counts[:floor_bin] = 0
        total = counts.sum()
        if total <= 0:
            return None
        target = percentile / 100.0 * total
        cumulative = torch.cumsum(counts, dim=0)
        index = int(torch.searchsorted(cumulative, target).clamp(0, BINS - 1).item())
        log2_value = LOG2_LOW + (index + 0.5) / BINS * (LOG2_HIGH - LOG2_LOW)
        return float(2.0**log2_value)


def headroom_amax(
    histogram: BlockHistogram, anchor_percentile: float, upper_percentile: float, rho: float
) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """The per-tensor amax and what it was derived from (for the report)."""
    if histogram.counts is None or histogram.largest is None:
        return None, {}
    upper = (
        float(histogram.largest)
        if upper_percentile >= 100.0
        else histogram.percentile(upper_percentile)
    )
    anchor = (
        histogram.percentile(anchor_percentile, floor=upper / ANCHOR_FLOOR_RATIO) if upper else None
    )
    if not upper or upper <= 0 or not anchor or anchor <= 0:
        return histogram.largest.clone().float(), {"fallback": "largest block amax"}
    headroom = rho * anchor
    amax = headroom if headroom > upper else upper
    details = {"anchor": anchor, "upper": upper, "headroom": headroom > upper}
    return torch.tensor(float(amax), dtype=torch.float32), details


def calibrate_headroom(calibration: Calibration) -> None:
    """Headroom-anchored NVFP4 input scales; everything else by the weight-scale algorithm."""
    targets: list[tuple[str, TensorQuantizer]] = []
    for slot, quantizer in calibration.placed:
        if not slot.name.endswith("input_quantizer"):
            continue
        if isinstance(quantizer, SequentialQuantizer):
            if any(is_dynamic_nvfp4(stage) for stage in quantizer.stages):
                raise ValueError(
                    f"nvfp4_act_headroom does not support a sequence of quantizers on an input "
                    f"({slot.name}); use one NVFP4 quantizer there, or calibrate with max"
                )
            continue
        if is_dynamic_nvfp4(quantizer):
            targets.append((slot.name, quantizer))
    histograms = {id(q): BlockHistogram(q.fmt.block_size) for _, q in targets}
    collectors: dict[int, Collector] = dict(histograms)
    weight_algorithm = calibration.algorithm.get("weight_scale_algorithm") or {"method": "max"}
    inner = calibration.restricted(calibration.model, calibration.placed, calibration.forward_loop)
    inner.algorithm = dict(weight_algorithm)
    inner.progress = calibration.progress
    calibrate_max(inner, extra_collectors=collectors)
    if weight_algorithm.get("method") == "mse":
        search_weights(inner)
    if not targets:
        calibration.result.warnings.append(
            "nvfp4_act_headroom: no dynamic NVFP4 input quantizer is enabled; this is max "
            "calibration"
        )
    anchor = float(calibration.option("anchor_percentile", 1.0))
    upper = float(calibration.option("upper_percentile", 99.99))
    rho = float(calibration.option("rho", 16384.0))
    with timed(calibration.result.timings, "headroom"):
        for name, quantizer in targets:
            histogram = histograms[id(quantizer)]
            histogram.reduce(calibration.distributed_sync)
            amax, details = headroom_amax(histogram, anchor, upper, rho)
            if amax is None:
                calibration.result.warnings.append(
                    f"{name}: no calibration data reached this quantizer; it takes amax from "
                    "each tensor at run time"
                )
                continue
            quantizer.amax = amax
            calibration.result.record(name, headroom=details)
            if details.get("headroom") is False:
                calibration.result.warnings.append(
                    f"nvfp4_act_headroom: {name}: the block amax range leaves no headroom at "
                    f"rho={rho:g}; its amax is the top of the calibrated range"
                )


NVFP4_ACT_HEADROOM = Algorithm("nvfp4_act_headroom", OPTIONS, calibrate_headroom)
