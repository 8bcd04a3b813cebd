"""The calibrated per-tensor amax of every quantizer, travelling beside the checkpoint.

A checkpoint stores scales (``amax / 448`` for FP8), which is what serving engines compute
with. Fake quantization computes with ``448 * (1 / amax)`` and its reciprocal instead, one
float32 rounding away, so a model loaded from the scales alone differs from the model that
was exported in the last bits (and an FP8 activation on a rounding boundary can round the
other way). ``qrecipe-amax.json`` keeps each per-tensor amax exactly (as ``float.hex``) under
the quantizer's name in the model, so that :func:`qrecipe.runtime.load` rebuilds the
fake-quantized arithmetic from a checkpoint this package wrote. Serving engines ignore the
file; checkpoints without it load from their scales.

Block and per-channel amax (INT4 blocks, NVFP4 block scales) are not kept: they are as large
as the scales themselves, and NVFP4 loads bit-exactly from its scales already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..placement import iter_quantizers
from ..quantizer import iter_stages

AMAX_FILE = "qrecipe-amax.json"
FORMAT = "float32 amax per quantizer stage, float.hex (null: not per-tensor or uncalibrated)"


def calibrated_amax(model: nn.Module) -> dict[str, list[str | None]]:
    """Every quantizer's per-stage amax as ``float.hex``, where it is one calibrated value."""
    found: dict[str, list[str | None]] = {}
    for name, quantizer in iter_quantizers(model):
        values: list[str | None] = []
        for stage in iter_stages(quantizer):
            amax = stage.amax
            if stage.enabled and amax is not None and amax.numel() == 1:
                values.append(float(amax.detach().float().item()).hex())
            else:
                values.append(None)
        if any(value is not None for value in values):
            found[name] = values
    return found


def write_amax(directory: Path, model: nn.Module) -> None:
    data = {"format": FORMAT, "amax": calibrated_amax(model)}
    (directory / AMAX_FILE).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_amax(directory: Path) -> dict[str, list[Tensor | None]]:
    """The amax of ``qrecipe-amax.json`` as float32 scalars; empty when there is none."""
    path = directory / AMAX_FILE
    if not path.is_file():
        return {}
    try:
        data: Any = json.loads(path.read_text())
        return {
            name: [None if v is None else torch.tensor(float.fromhex(v)) for v in values]
            for name, values in data["amax"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not an amax file this package writes ({exc})") from None


def fake_quant_inverse(amax: Tensor, limit: float) -> Tensor:
    """``1 / (limit * (1 / amax))`` in float32: the multiplier fake quantization dequantizes
    with (see :func:`..kernels.reference.fake_quant`), as a checkpoint's scale."""
    return torch.reciprocal(torch.reciprocal(amax.float()) * limit)


__all__ = ["AMAX_FILE", "calibrated_amax", "fake_quant_inverse", "read_amax", "write_amax"]
