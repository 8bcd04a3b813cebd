"""``max``: every static quantizer's amax is the largest magnitude it sees.

Weights are calibrated straight from the weight tensors; activations take the running maximum
of :func:`~qrecipe.runtime.kernels.reduce_amax` over the forward passes of
``forward_loop(model)`` (see :mod:`.collect`), reduced by maximum across processes. An
activation quantizer no data reaches, or one left without a ``forward_loop``, takes amax from
each tensor at run time; the report says so.

Static NVFP4 weights of layers that export fuses (q/k/v, gate/up, w1/w3 siblings under one
parent) share one per-tensor amax, the largest of theirs, as in the reference; the recipe's
``shared_states: {weight_global_amax: {patterns: [...]}}`` replaces the grouping patterns (an
empty list turns sharing off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..kernels import reduce_amax
from ..quantizer import Collector, TensorQuantizer
from ..timing import timed
from .base import MIN_PROGRESS_ITEMS, Algorithm, Calibration, OptionRule, Stages
from .collect import collect_amax, reduce_amaxes
from .options import COMMON_OPTIONS, accepted, false_only, shared_states

OPTIONS: dict[str, OptionRule] = {
    **COMMON_OPTIONS,
    "sync_expert_weight_amax": false_only,
    "skip_forward_without_activation_calib": accepted,
    "shared_states": shared_states,
}

SHARED_PATTERNS = (
    r"(?:(.*)\.)?(?:q_proj|k_proj|v_proj)",
    r"(?:(.*)\.)?(?:gate_proj|up_proj)",
    r"(?:(.*)\.)?(?:w1|w3)",
)
"""Module names whose static NVFP4 weights share a per-tensor amax: the capture is the parent."""


def calibrate_max(
    calibration: Calibration, extra_collectors: Mapping[int, Collector] | None = None
) -> None:
    """Give every enabled static quantizer the amax of the data it sees.

    ``extra_collectors`` (by stage ``id``) gather other statistics in the same forward pass;
    the stages they serve are left to the caller.
    """
    extra = extra_collectors or {}
    weights, activations = calibration.static_stages()
    activations = [(slot, stage) for slot, stage in activations if id(stage) not in extra]
    with timed(calibration.result.timings, "calibrate_weights"):
        calibrate_weights(weights, calibration.progress)
        share_global_amax(calibration)
    with timed(calibration.result.timings, "calibrate_activations"):
        _calibrate_activations(calibration, activations, extra)


def calibrate_weights(weights: Stages, progress: bool) -> None:
    """Each weight stage's amax straight from its weight tensor."""
    with torch.no_grad():
        for slot, stage in tqdm(
            weights,
            desc="calibrating weights",
            unit="quantizer",
            disable=not progress or len(weights) < MIN_PROGRESS_ITEMS,
        ):
            stage.amax = reduce_amax(slot.weight(), stage.fmt).float()
            stage.global_amax = None


def is_static_nvfp4(stage: TensorQuantizer) -> bool:
    """Static NVFP4 (calibrated block amax under a per-tensor amax)."""
    fmt = stage.fmt
    return fmt.scheme == "nvfp4" and not fmt.dynamic_blocks and not fmt.dynamic


def _patterns(calibration: Calibration) -> Sequence[str]:
    states: dict[str, Any] | None = calibration.algorithm.get("shared_states")
    if states is None:
        return SHARED_PATTERNS
    return list(states.get("weight_global_amax", {}).get("patterns", SHARED_PATTERNS))


def share_global_amax(calibration: Calibration) -> None:
    """Siblings' static NVFP4 weights take the largest per-tensor amax of their group."""
    compiled = [re.compile(pattern) for pattern in _patterns(calibration)]
    if not compiled:
        return
    groups: dict[tuple[int, tuple[str | None, ...]], list[TensorQuantizer]] = {}
    for slot, quantizer in calibration.placed:
        # As in the reference, members are layers with one enabled weight quantizer.
        if slot.role != "weight" or slot.expert is not None:
            continue
        if not isinstance(quantizer, TensorQuantizer) or not quantizer.enabled:
            continue
        for index, regex in enumerate(compiled):
            match = regex.fullmatch(slot.owner_name)
            if match is not None:
                groups.setdefault((index, match.groups()), []).append(quantizer)
                break
    for members in groups.values():
        calibrated = [m for m in members if m.amax is not None]
        if len(members) < 2 or not calibrated:
            continue
        shared = torch.stack([m.amax.amax() for m in calibrated if m.amax is not None]).amax()
        for member in members:
            if member.amax is not None and is_static_nvfp4(member):
                member.global_amax = shared


def _calibrate_activations(
    calibration: Calibration, activations: Stages, extra: Mapping[int, Collector]
) -> None:
    result = calibration.result
    forward_loop = calibration.forward_loop
    if activations and forward_loop is None:
        result.warnings.append(
            f"no forward_loop given: {len(activations)} activation quantizer(s) are not "
            "calibrated and take amax from each tensor at run time"
        )
        return
    skip = bool(calibration.algorithm.get("skip_forward_without_activation_calib"))
    if forward_loop is None or (skip and not activations and not extra):
        return
    batches, amaxes = collect_amax(
        calibration.model,
        calibration.placed,
        activations,
        forward_loop,
        calibration.progress,
        extra,
    )
    result.batches += batches
    amaxes = reduce_amaxes(amaxes, calibration.distributed_sync)
    for (slot, stage), amax in zip(activations, amaxes, strict=True):
        if amax is None:
            result.warnings.append(
                f"{slot.name}: no calibration data reached this quantizer; it takes amax from "
                "each tensor at run time"
            )
        else:
            stage.amax = amax


MAX = Algorithm("max", OPTIONS, calibrate_max)
