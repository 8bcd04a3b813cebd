"""``max``: every static quantizer's amax is the largest magnitude it sees.

Weights are calibrated straight from the weight tensors; activations take the running maximum
of :func:`~qrecipe.runtime.kernels.reduce_amax` over the forward passes of
``forward_loop(model)`` (see :mod:`.collect`). An activation quantizer no data reaches, or one
left without a ``forward_loop``, takes amax from each tensor at run time; the report says so.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..kernels import reduce_amax
from ..timing import timed
from .base import MIN_PROGRESS_ITEMS, Algorithm, Calibration, OptionRule, Stages
from .collect import collect_amax
from .options import COMMON_OPTIONS, accepted, false_only

OPTIONS: dict[str, OptionRule] = {
    **COMMON_OPTIONS,
    "sync_expert_weight_amax": false_only,
    "skip_forward_without_activation_calib": accepted,
}


def calibrate_max(calibration: Calibration) -> None:
    """Give every enabled static quantizer the amax of the data it sees."""
    weights, activations = calibration.static_stages()
    with timed(calibration.result.timings, "calibrate_weights"):
        _calibrate_weights(weights, calibration.progress)
    with timed(calibration.result.timings, "calibrate_activations"):
        _calibrate_activations(calibration, activations)


def _calibrate_weights(weights: Stages, progress: bool) -> None:
    with torch.no_grad():
        for slot, stage in tqdm(
            weights,
            desc="calibrating weights",
            unit="quantizer",
            disable=not progress or len(weights) < MIN_PROGRESS_ITEMS,
        ):
            stage.amax = reduce_amax(slot.weight(), stage.fmt).float()


def _calibrate_activations(calibration: Calibration, activations: Stages) -> None:
    result = calibration.result
    forward_loop = calibration.forward_loop
    if activations and forward_loop is None:
        result.warnings.append(
            f"no forward_loop given: {len(activations)} activation quantizer(s) are not "
            "calibrated and take amax from each tensor at run time"
        )
        return
    skip = bool(calibration.algorithm.get("skip_forward_without_activation_calib"))
    if forward_loop is None or (skip and not activations):
        return
    result.batches, amaxes = collect_amax(
        calibration.model, calibration.placed, activations, forward_loop, calibration.progress
    )
    for (slot, stage), amax in zip(activations, amaxes, strict=True):
        if amax is None:
            result.warnings.append(
                f"{slot.name}: no calibration data reached this quantizer; it takes amax from "
                "each tensor at run time"
            )
        else:
            stage.amax = amax


MAX = Algorithm("max", OPTIONS, calibrate_max)
