"""``smoothquant``: activation outliers migrated into the weights (SmoothQuant), with ``alpha``.

As in the reference, for every linear layer whose input quantizer quantizes per tensor:

1. ``max`` calibration, the input's amax collected per input channel ``a`` (reduced by maximum
   across processes);
2. for INT8 layers (8-bit integer input and weight quantizers), per input channel
   ``s = max|W[:, c]| ** (1 - alpha) / a ** alpha`` (channels with ``a <= 2**-31`` take 1,
   then clamped to [1e-4, 1e4]): the input quantizer's ``pre_quant_scale`` becomes ``s``, the
   weight is multiplied by ``1 / s`` along its input axis and its amax calibrated again, and
   the input's per-tensor amax is ``max(a * s)``.

Other layers keep the per-channel input amax the statistic produced (the input quantizer
becomes per channel on the last axis, as in the reference); the report warns about each.
"""

from __future__ import annotations

from typing import Any

import torch

from ..quantizer import Collector, TensorQuantizer
from ..timing import timed
from .base import Algorithm, Calibration, LinearLayer, OptionRule
from .collect import combine, reduce_amaxes
from .max import calibrate_max
from .options import MUTATING_OPTIONS, unit_interval_or_null
from .smoothing import channel_statistic, fold_pre_quant_scale

OPTIONS: dict[str, OptionRule] = {**MUTATING_OPTIONS, "alpha": unit_interval_or_null}

EPSILON = 1.0 / (1 << 31)


class ChannelMax:
    """Running per-channel amax of a linear layer's inputs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.amax: torch.Tensor | None = None

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        if x.numel():
            self.amax = combine(self.amax, channel_statistic(quantizer, x), self.name)


def _is_int8(quantizer: Any) -> bool:
    return isinstance(quantizer, TensorQuantizer) and quantizer.attributes["num_bits"] == 8


def calibrate_smoothquant(calibration: Calibration) -> None:
    """Smooth every INT8 linear layer's input into its weight, then calibrate."""
    if calibration.forward_loop is None:
        raise ValueError("smoothquant needs calibration data: pass forward_loop to apply()")
    alpha = float(calibration.option("alpha", 1.0))
    layers = [
        layer
        for layer in calibration.linear_layers()
        if layer.input.enabled
        and layer.input.attributes["axis"] is None
        and layer.input.attributes["block_sizes"] is None
        and layer.input.needs_calibration
    ]
    collectors: dict[int, Collector] = {}
    channel_maxima = [ChannelMax(layer.input_name) for layer in layers]
    for layer, channel_max in zip(layers, channel_maxima, strict=True):
        collectors[id(layer.input)] = channel_max
    calibrate_max(calibration, extra_collectors=collectors)
    amaxes = reduce_amaxes(
        [channel_max.amax for channel_max in channel_maxima], calibration.distributed_sync
    )
    with timed(calibration.result.timings, "smoothquant"):
        for layer, amax in zip(layers, amaxes, strict=True):
            if amax is None:
                calibration.result.warnings.append(
                    f"{layer.input_name}: no calibration data reached this layer; not smoothed"
                )
                continue
            if not (_is_int8(layer.input) and _is_int8(layer.weight)):
                _keep_per_channel(calibration, layer, amax)
                continue
            _smooth(calibration, layer, amax, alpha)


def _keep_per_channel(calibration: Calibration, layer: LinearLayer, amax: torch.Tensor) -> None:
    layer.input.configure({**layer.input.attributes, "axis": -1})
    layer.input.amax = amax.reshape(layer.input.fmt.amax_shape((1, amax.numel())))
    calibration.result.warnings.append(
        f"{layer.input_name}: smoothquant smooths INT8 layers only; this input keeps a "
        "per-channel amax (axis -1), as in the reference"
    )


def _smooth(calibration: Calibration, layer: LinearLayer, amax: torch.Tensor, alpha: float) -> None:
    weight = layer.module.weight.detach()
    weight_scale = weight.abs().amax(dim=0, keepdim=True)
    scale = (weight_scale.pow(1 - alpha) / amax.to(weight.device).pow(alpha)).squeeze()
    if scale.min() <= EPSILON:
        scale[amax.to(scale.device) <= EPSILON] = 1
    scale = scale.clamp(min=1e-4, max=1e4)
    fold_pre_quant_scale(calibration, layer, scale, amax)
    calibration.result.record(
        layer.input_name,
        smoothquant_alpha=alpha,
        pre_quant_scale={
            "min": float(scale.min()),
            "mean": float(scale.mean()),
            "max": float(scale.max()),
        },
    )


SMOOTHQUANT = Algorithm("smoothquant", OPTIONS, calibrate_smoothquant, mutates_weights=True)
