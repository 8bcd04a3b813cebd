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
from .base import Algorithm, Calibration, OptionRule
from .collect import collect_amax
from .options import COMMON_OPTIONS, accepted, false_only

OPTIONS: dict[str, OptionRule] = {
    **COMMON_OPTIONS,
    "sync_expert_weight_amax": false_only,
    "skip_forward_without_activation_calib": accepted,
}


def calibrate_max(calibration: Calibration) -> None:
    """Give every enabled static quantizer the amax of the data it sees."""
    result = calibration.result
    weights, activations = calibration.static_stages()
    with timed(result.timings, "calibrate_weights"), torch.no_grad():
        hidden = not calibration.progress
        for slot, stage in tqdm(
            weights, desc="calibrating weights", unit="quantizer", disable=hidden
        ):
            stage.amax = reduce_amax(slot.weight(), stage.fmt).float()

    with timed(result.timings, "calibrate_activations"):
        skip_forward = (
            bool(calibration.algorithm.get("skip_forward_without_activation_calib"))
            and not activations
        )
        forward_loop = calibration.forward_loop
        if activations and forward_loop is None:
            result.warnings.append(
                f"no forward_loop given: {len(activations)} activation quantizer(s) are not "
                "calibrated and take amax from each tensor at run time"
            )
        elif forward_loop is not None and not skip_forward:
            result.batches, amaxes = collect_amax(
                calibration.model,
                calibration.placed,
                activations,
                forward_loop,
                calibration.progress,
            )
            for (slot, stage), amax in zip(activations, amaxes, strict=True):
                if amax is not None:
                    stage.amax = amax
                else:
                    result.warnings.append(
                        f"{slot.name}: no calibration data reached this quantizer; it takes "
                        "amax from each tensor at run time"
                    )


MAX = Algorithm("max", OPTIONS, calibrate_max)
