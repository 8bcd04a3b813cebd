"""The public entry points: pick a backend, run the PyTorch path, the reference or Triton."""

from __future__ import annotations

import torch
from torch import Tensor

from . import reference, torch_qdq
from .formats import QuantFormat

BACKENDS = ("auto", "torch", "triton", "reference")

__all__ = ["BACKENDS", "fake_quant", "fake_quant_", "reduce_amax"]


def _resolve_backend(x: Tensor, backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "triton" if x.is_cuda else "torch"
    return backend


def reduce_amax(x: Tensor, fmt: QuantFormat, *, backend: str = "auto") -> Tensor:
    """The calibration statistic of one tensor for ``fmt``, as float32.

    max |x| per tensor (a 0-d tensor), per channel (``axis`` kept, the other axes reduced to
    size 1) or per block (the tensor's shape with each blocked axis replaced by its number of
    blocks). NaN and infinities are ignored. Running calibration is ``torch.maximum`` of
    successive results. Dynamic NVFP4 returns its per-tensor amax.
    """
    with torch.no_grad():
        if _resolve_backend(x, backend) == "triton":
            from . import triton_qdq

            return triton_qdq.reduce_amax(x.detach(), fmt)
        if backend == "reference":
            return reference.reduce_amax(x.detach(), fmt)
        return torch_qdq.reduce_amax(x.detach(), fmt)


def fake_quant(
    x: Tensor,
    fmt: QuantFormat,
    amax: Tensor | None = None,
    *,
    backend: str = "auto",
    global_amax: Tensor | None = None,
) -> Tensor:
    """Quantize-dequantize ``x`` (float32, float16 or bfloat16), returning its dtype.

    ``amax`` is a result of :func:`reduce_amax` (or anything that broadcasts to it, such as
    a single value). It is ignored by formats whose scales come from the data (MX, dynamic
    formats); for dynamic NVFP4 it is the per-tensor amax when given. When a format needs an
    amax and none is given, the tensor's own statistic is used.

    ``backend``: ``"triton"``, ``"torch"``, ``"reference"`` or ``"auto"`` (Triton for CUDA
    tensors, the PyTorch path otherwise). ``"torch"`` computes in a few in-place passes,
    ``"reference"`` one exact operation at a time (the definition); all give identical bits.
    No gradient flows through the result.

    ``global_amax``: static NVFP4 only, the per-tensor amax that sets the FP32 scale above the
    FP8 block scales (by default the largest block amax). Calibration fixes it apart from the
    block amax when siblings share one per-tensor scale or when an MSE search lowers every
    block's amax.
    """
    if global_amax is not None and not (fmt.scheme == "nvfp4" and not fmt.dynamic_blocks):
        raise ValueError("global_amax applies to static NVFP4 only")
    with torch.no_grad():
        if _resolve_backend(x, backend) == "triton":
            from . import triton_qdq

            return triton_qdq.fake_quant(x.detach(), fmt, amax, global_amax)
        if backend == "reference":
            return reference.fake_quant(x.detach(), fmt, amax, global_amax)
        return torch_qdq.fake_quant(x.detach(), fmt, amax, global_amax)


def fake_quant_(
    x: Tensor,
    fmt: QuantFormat,
    amax: Tensor | None = None,
    *,
    backend: str = "auto",
    global_amax: Tensor | None = None,
) -> Tensor:
    """:func:`fake_quant` written into ``x``, which is returned (the same bits).

    For tensors that nothing else reads afterwards in their unquantized form. The PyTorch path
    quantizes contiguous float32 tensors without allocating another one; the other backends
    compute the result and copy it back.
    """
    with torch.no_grad():
        if _resolve_backend(x, backend) == "torch":
            if global_amax is not None and not (fmt.scheme == "nvfp4" and not fmt.dynamic_blocks):
                raise ValueError("global_amax applies to static NVFP4 only")
            torch_qdq.fake_quant_(x.detach(), fmt, amax, global_amax)
        else:
            result = fake_quant(x, fmt, amax, backend=backend, global_amax=global_amax)
            x.detach().copy_(result)
    return x
