"""Per-channel scales moved from a linear layer's input into its weight (AWQ, SmoothQuant).

The input quantizer multiplies every input by ``pre_quant_scale`` (one factor per input
channel) and the layer's weight is multiplied by its inverse along the input axis, so that the
layer computes the same product before quantization. The weight is changed in place as the
reference does (the original is kept for removal); its amax is then calibrated again.
"""

from __future__ import annotations

import torch

from ..kernels import QuantFormat, reduce_amax
from ..quantizer import AnyQuantizer, TensorQuantizer, iter_stages
from .base import Calibration, LinearLayer


def per_channel_format(quantizer: TensorQuantizer) -> QuantFormat:
    """The quantizer's format with one amax per channel of the last axis (for statistics)."""
    return QuantFormat.from_cfg({**quantizer.attributes, "axis": -1, "block_sizes": None})


def recalibrate_weight(quantizer: AnyQuantizer, weight: torch.Tensor) -> None:
    """Max-calibrate every enabled static stage of a weight quantizer on ``weight``."""
    with torch.no_grad():
        for stage in iter_stages(quantizer):
            if stage.enabled and stage.needs_calibration:
                stage.amax = reduce_amax(weight, stage.fmt).float()
                stage.global_amax = None


def fold_pre_quant_scale(
    calibration: Calibration,
    layer: LinearLayer,
    scale: torch.Tensor,
    channel_amax: torch.Tensor | None,
) -> None:
    """Inputs times ``scale`` (float32, one per input channel), the weight times its inverse.

    ``channel_amax``: the per-channel amax of the (unscaled) inputs, when the input quantizer
    quantizes with a static amax; its new amax is then the largest scaled channel amax.
    """
    weight = layer.module.weight
    dtype = weight.dtype
    scale = scale.float()
    layer.input.pre_quant_scale = scale.to(dtype)
    inverse = 1.0 / scale
    folded = (weight.detach() * inverse.to(weight.device).reshape(-1)[None, :]).to(dtype)
    calibration.replace_weight(layer.module, folded)
    recalibrate_weight(layer.weight, layer.module.weight.detach())
    if channel_amax is not None:
        scaled = channel_amax.to(dtype) * scale.to(channel_amax.device).reshape(-1)
        layer.input.amax = scaled.amax().to(dtype)


def channel_statistic(quantizer: TensorQuantizer, x: torch.Tensor) -> torch.Tensor:
    """max |x| per channel of the last axis, flattened (float32)."""
    return reduce_amax(x.detach(), per_channel_format(quantizer)).float().reshape(-1)
