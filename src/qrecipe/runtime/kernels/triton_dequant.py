# Triton kernel arguments are typed by the Triton compiler from the call, not by annotations.
# ruff: noqa: ANN001
"""Triton dequantization of packed weights, bit-exact with :mod:`.packing` (the PyTorch path).

Every weight is seen as a row-major ``[R, C]`` matrix of its dequantized shape (experts and
output rows flattened into R); each program writes ``BLOCK`` consecutive elements. Codes are
decoded with integer bit operations (never through float casts to narrow types, which the
interpreter gets wrong), each product is a single IEEE multiplication in the order the
PyTorch path uses, and the result is rounded once to the output dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .table import E4M3
from .triton_kernels import (
    DTYPE_BFLOAT16,
    DTYPE_FLOAT16,
    DTYPE_FLOAT32,
    _round_to_grid,
    _to_dtype,
)
from .triton_qdq import _check_device, _launch_options

__all__ = ["dequantize"]

BLOCK = 1024
_DTYPE_CODES = {
    torch.float32: DTYPE_FLOAT32.value,
    torch.float16: DTYPE_FLOAT16.value,
    torch.bfloat16: DTYPE_BFLOAT16.value,
}
# How a weight is packed.
KIND_FP8 = tl.constexpr(0)  # one E4M3 code per byte, a scale per row
KIND_NVFP4 = tl.constexpr(1)  # two E2M1 codes per byte along the row, E4M3 block scales
KIND_INT4 = tl.constexpr(2)  # two INT4 codes per byte down the column, FP32 block scales
KIND_INT4_FP8 = tl.constexpr(3)  # INT4 as above, then an FP8 stage with a scale per row
_KINDS = {"fp8": KIND_FP8.value, "nvfp4": KIND_NVFP4.value, "int4": KIND_INT4.value}
_KINDS["int4_fp8"] = KIND_INT4_FP8.value
_E4M3_MAX = tl.constexpr(E4M3.max_value)
_E4M3_MANTISSA = tl.constexpr(E4M3.mantissa_bits)
_E4M3_MIN_NORMAL_EXPONENT = tl.constexpr(E4M3.min_normal_exponent)


@triton.jit
def _decode_e4m3(byte):
    """Float32 value of an E4M3 code (int32 0..255), exactly."""
    sign = byte >> 7
    exponent = (byte >> 3) & 0xF
    mantissa = byte & 0x7
    normal = ((sign << 31) | ((exponent + 120) << 23) | (mantissa << 20)).to(
        tl.float32, bitcast=True
    )
    subnormal = mantissa.to(tl.float32) * 0.001953125  # mantissa * 2**-9
    subnormal = tl.where(sign == 1, -subnormal, subnormal)
    value = tl.where(exponent == 0, subnormal, normal)
    nan = (exponent == 15) & (mantissa == 7)
    return tl.where(nan, float("nan"), value)


@triton.jit
def _decode_e2m1(code):
    """Float32 value of an E2M1 code (int32 0..15): {0, .5, 1, 1.5, 2, 3, 4, 6} and negatives."""
    exponent = (code >> 1) & 0x3
    half = (code & 1).to(tl.float32) * 0.5
    power = tl.where(exponent == 3, 4.0, tl.where(exponent == 2, 2.0, 1.0))
    magnitude = tl.where(exponent == 0, half, (1.0 + half) * power)
    return tl.where((code & 8) != 0, -magnitude, magnitude)


@triton.jit
def _dequant_kernel(
    codes_ptr,
    scale_ptr,
    scale2_ptr,
    out_ptr,
    N,
    C,
    NB,
    GROUP,
    KIND: tl.constexpr,
    DTYPE: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < N
    row = offsets // C
    col = offsets % C
    if KIND == KIND_FP8:
        byte = tl.load(codes_ptr + offsets, mask=mask, other=0).to(tl.int32)
        scale = tl.load(scale_ptr + row, mask=mask, other=0.0)
        y = _decode_e4m3(byte) * scale
    elif KIND == KIND_NVFP4:
        byte = tl.load(codes_ptr + row * (C // 2) + col // 2, mask=mask, other=0).to(tl.int32)
        code = tl.where((col & 1) == 0, byte & 0xF, (byte >> 4) & 0xF)
        block = tl.load(scale_ptr + row * NB + col // GROUP, mask=mask, other=0).to(tl.int32)
        global_scale = tl.load(scale2_ptr + row, mask=mask, other=0.0)
        y = _decode_e2m1(code) * (_decode_e4m3(block) * global_scale)
    else:
        byte = tl.load(codes_ptr + (row // 2) * C + col, mask=mask, other=0).to(tl.int32)
        nibble = tl.where((row & 1) == 0, byte & 0xF, (byte >> 4) & 0xF)
        value = tl.where(nibble >= 8, nibble - 16, nibble).to(tl.float32)
        scale = tl.load(scale_ptr + row * NB + col // GROUP, mask=mask, other=0.0)
        y = value * scale
        if KIND == KIND_INT4_FP8:
            # The INT4 weight in the model's dtype, then the FP8 stage.
            first = _to_dtype(y, DTYPE).to(tl.float32)
            second = tl.load(scale2_ptr + row, mask=mask, other=1.0)
            ratio = tl.math.div_rn(first, second)
            ratio = tl.where(
                ratio > _E4M3_MAX, _E4M3_MAX, tl.where(ratio < -_E4M3_MAX, -_E4M3_MAX, ratio)
            )
            y = _round_to_grid(ratio, _E4M3_MANTISSA, _E4M3_MIN_NORMAL_EXPONENT) * second
    tl.store(out_ptr + offsets, _to_dtype(y, DTYPE), mask=mask)


def _rows(value: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A per-tensor or per-row float32 scale as one value per row of ``shape``."""
    rows = 1
    for size in shape[:-1]:
        rows *= size
    return value.float().expand(*shape[:-1], 1).reshape(rows).contiguous()


def dequantize(
    kind: str, codes: Tensor, scale: Tensor, scale_2: Tensor | None, dtype: torch.dtype
) -> Tensor:
    """The Triton counterpart of :func:`qrecipe.runtime.packed.dequantize` (same bits)."""
    _check_device(codes)
    shape = list(codes.shape)
    if kind == "nvfp4":
        shape[-1] *= 2
    elif kind in ("int4", "int4_fp8"):
        shape[-2] *= 2
    out_shape = tuple(shape)
    columns = out_shape[-1]
    total = 1
    for size in out_shape:
        total *= size
    out = torch.empty(out_shape, dtype=dtype, device=codes.device)
    if total == 0:
        return out
    blocks, group = 1, 1
    second = scale_2
    if kind == "fp8":
        codes_arg = codes.contiguous().view(torch.uint8)
        scale_arg = _rows(scale, out_shape)
    else:
        blocks = scale.shape[-1]
        group = columns // blocks
        scale_arg = scale.contiguous()
        if kind == "nvfp4":
            scale_arg = scale_arg.view(torch.uint8)
        codes_arg = codes.contiguous()
    scale2_arg = _rows(second, out_shape) if second is not None else scale_arg
    grid = (triton.cdiv(total, BLOCK),)
    _dequant_kernel[grid](
        codes_arg,
        scale_arg,
        scale2_arg,
        out,
        total,
        columns,
        blocks,
        group,
        KIND=_KINDS[kind],
        DTYPE=_DTYPE_CODES[dtype],
        BLOCK_SIZE=BLOCK,
        **_launch_options(),
    )
    return out
