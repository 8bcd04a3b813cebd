"""Calibration: giving static quantizers their ``amax``.

One module per algorithm, each defining an :class:`~.base.Algorithm` (its name in recipes, the
options it accepts with a rule for each, and how it runs): :mod:`.max`, :mod:`.mse`,
:mod:`.smoothquant`, :mod:`.awq` (``awq_lite``, ``awq_clip``, ``awq_full``), :mod:`.gptq` and
:mod:`.headroom` (``nvfp4_act_headroom``). :mod:`.layerwise` runs any of them one decoder layer
at a time (``layerwise: {enable: true}``), :mod:`.checkpoint` saves and resumes such runs;
:mod:`.offload` loads weights that accelerate offloads. :mod:`.collect` gathers activation
statistics from ``forward_loop`` and reduces them across the processes of a torch.distributed
job; :mod:`.options` holds the option rules.
A new algorithm is a new module whose :class:`~.base.Algorithm` is added to
:data:`ALGORITHMS`; recipes that name it then pass the runtime's checks.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..quantizer import iter_stages
from .awq import AWQ_CLIP, AWQ_FULL, AWQ_LITE
from .base import Algorithm, Calibration, CalibrationResult, ForwardLoop, Placed
from .checkpoint import CheckpointMismatchError
from .gptq import GPTQ
from .headroom import NVFP4_ACT_HEADROOM
from .layerwise import calibrate_layerwise
from .max import MAX
from .mse import MSE
from .offload import materialized
from .smoothquant import SMOOTHQUANT

ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        MAX,
        MSE,
        SMOOTHQUANT,
        AWQ_LITE,
        AWQ_CLIP,
        AWQ_FULL,
        GPTQ,
        NVFP4_ACT_HEADROOM,
    )
}
"""Calibration methods the runtime runs, by their name in recipes."""

SUPPORTED_ALGORITHMS: tuple[str | None, ...] = (*ALGORITHMS, None)
"""Calibration methods the runtime runs; None (``algorithm: null``) means no calibration."""

__all__ = [
    "ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "Algorithm",
    "Calibration",
    "CalibrationResult",
    "CheckpointMismatchError",
    "ForwardLoop",
    "calibrate",
]


def calibrate(
    model: nn.Module,
    placed: Placed,
    algorithm: dict[str, Any] | None,
    forward_loop: ForwardLoop | None,
    *,
    progress: bool = True,
    recipe_fingerprint: str = "",
) -> CalibrationResult:
    """Calibrate the placed quantizers in place with the recipe's ``algorithm``.

    ``recipe_fingerprint``: the flat recipe's, recorded in layer-by-layer checkpoints.
    """
    if algorithm is None:
        result = CalibrationResult()
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
    calibration = Calibration(
        model, placed, algorithm, forward_loop, progress, recipe_fingerprint=recipe_fingerprint
    )
    method = ALGORITHMS[algorithm["method"]]
    layerwise = algorithm.get("layerwise") or {}
    if layerwise.get("enable"):
        calibrate_layerwise(calibration, method)
    else:
        with materialized(model, writeback=method.mutates_weights):
            method.run(calibration)
    return calibration.result
