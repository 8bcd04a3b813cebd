# Triton kernel arguments are typed by the Triton compiler from the call, not by annotations.
# ruff: noqa: ANN001
"""The Triton device code: the fake-quantization and amax kernels and their helpers.

:mod:`.triton_qdq` lays tensors out and launches these; the design is described there. Every
constant a kernel reads is a ``tl.constexpr`` module global (compiled kernels may read no other
globals; the interpreter is more lenient, which is why a compile-for-GPU test exists), taken
from the format table where it is a property of a format.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .table import E4M3, E8M0_MAX_EXPONENT, E8M0_MIN_EXPONENT, NVFP4_GLOBAL_DIVISOR, ZERO_AMAX

# Codes the host passes as constexpr arguments (as ``code.value``) and the kernels branch on.
# Grouping of elements under one amax.
GROUP_TENSOR = tl.constexpr(0)  # one amax
GROUP_ROW = tl.constexpr(1)  # amax[row % RMOD]
GROUP_COL = tl.constexpr(2)  # amax[column]
GROUP_TABLE = tl.constexpr(
    3
)  # amax[((row % RMOD) // RB) * RSTRIDE + (row // RMOD) * OSTRIDE + block]
GROUP_DATA = tl.constexpr(4)  # per-block amax taken from the tile itself
# How an amax becomes a scale.
SCALE_FP32 = tl.constexpr(0)  # scale = max_value / amax
SCALE_NVFP4 = tl.constexpr(1)  # E4M3 block scale under a per-tensor FP32 scale
SCALE_E8M0 = tl.constexpr(2)  # power-of-two block scale
# Element kind.
ELEM_INT = tl.constexpr(0)
ELEM_FLOAT = tl.constexpr(1)
# Storage dtype of the input and output.
DTYPE_FLOAT32 = tl.constexpr(0)
DTYPE_FLOAT16 = tl.constexpr(1)
DTYPE_BFLOAT16 = tl.constexpr(2)

# Rounding to integers reuses the float-grid rounding with a grid that has spacing 1 up to 2**23.
_INT_GRID = tl.constexpr(22)
_ZERO_AMAX = tl.constexpr(ZERO_AMAX)
# NVFP4 block scales are E4M3 values under a per-tensor scale of amax / 2688.
_NVFP4_GLOBAL_DIVISOR = tl.constexpr(NVFP4_GLOBAL_DIVISOR)
_E4M3_MAX = tl.constexpr(E4M3.max_value)
_E4M3_MIN_SUBNORMAL = tl.constexpr(E4M3.min_subnormal)
_E4M3_MANTISSA = tl.constexpr(E4M3.mantissa_bits)
_E4M3_MIN_NORMAL_EXPONENT = tl.constexpr(E4M3.min_normal_exponent)
_E8M0_MIN_EXPONENT = tl.constexpr(E8M0_MIN_EXPONENT)
_E8M0_MAX_EXPONENT = tl.constexpr(E8M0_MAX_EXPONENT)
# float32 bit patterns: everything but the sign; the smallest non-finite magnitude (inf).
_FLOAT32_MAGNITUDE = tl.constexpr(0x7FFFFFFF)
_FLOAT32_INF = tl.constexpr(0x7F800000)


# -- device helpers --------------------------------------------------------------------------------


@triton.jit
def _pow2(exponent):
    """2**exponent as float32 for int32 exponents in [-127, 127] (exact, from bits)."""
    bits = tl.where(exponent >= -126, (exponent + 127) << 23, 4194304)
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _round_to_grid(v, MANT: tl.constexpr, EMIN: tl.constexpr):
    """Round finite float32 v to MANT fraction bits (subnormal below 2**EMIN), ties to even."""
    bits = v.to(tl.int32, bitcast=True)
    magnitude = bits & _FLOAT32_MAGNITUDE
    biased = magnitude >> 23
    significand = (magnitude & 0x7FFFFF) | tl.where(biased > 0, 0x800000, 0)
    effective = tl.maximum(biased, 1)
    quantum = tl.maximum(effective - 127, EMIN) - MANT
    # significand counts units of 2**(effective - 150); drop the bits below the quantum.
    shift = tl.minimum(quantum - (effective - 150), 30)
    kept = significand >> shift
    remainder = significand & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    round_up = (remainder > half) | ((remainder == half) & ((kept & 1) == 1))
    kept = kept + round_up.to(tl.int32)
    rounded = kept.to(tl.float32) * _pow2(quantum)
    return tl.where(bits < 0, -rounded, rounded)


@triton.jit
def _clamp(v, low, high):
    return tl.where(v > high, high, tl.where(v < low, low, v))


@triton.jit
def _as_float(raw, DTYPE: tl.constexpr):
    """Exact upcast to float32 (bfloat16 through its bits: the interpreter's cast is unreliable)."""
    if DTYPE == DTYPE_BFLOAT16:
        bits = raw.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
        return (bits << 16).to(tl.float32, bitcast=True)
    else:
        return raw.to(tl.float32)


@triton.jit
def _to_dtype(y, DTYPE: tl.constexpr):
    """Round float32 to the output dtype, to nearest even."""
    if DTYPE == DTYPE_BFLOAT16:
        bits = y.to(tl.int32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.to(tl.int16).to(tl.bfloat16, bitcast=True)
    elif DTYPE == DTYPE_FLOAT16:
        return y.to(tl.float16)
    else:
        return y


@triton.jit
def _tile(
    pid_r,
    pid_c,
    R,
    L,
    NBLK,
    BLOCK_R: tl.constexpr,
    NBC: tl.constexpr,
    BC: tl.constexpr,
    BCP: tl.constexpr,
):
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    blocks = pid_c * NBC + tl.arange(0, NBC)
    lanes = tl.arange(0, BCP)
    cols = blocks[:, None] * BC + lanes[None, :]
    row_ok = rows < R
    col_ok = (lanes[None, :] < BC) & (cols < L)
    block_ok = blocks < NBLK
    mask = row_ok[:, None, None] & col_ok[None, :, :]
    offsets = rows[:, None, None].to(tl.int64) * L + cols[None, :, :]
    return rows, blocks, cols, row_ok, col_ok, block_ok, mask, offsets


@triton.jit
def _table_index(rows, blocks, RMOD, RB, RSTRIDE, OSTRIDE):
    row_part = ((rows % RMOD) // RB) * RSTRIDE + (rows // RMOD) * OSTRIDE
    return row_part[:, None] + blocks[None, :]


# -- kernels ------------------------------------------------------------------------------------


@triton.jit
def _amax_kernel(
    x_ptr, out_ptr,
    R, L, NBLK, RMOD, RB, RSTRIDE, OSTRIDE,
    GROUP: tl.constexpr, DTYPE: tl.constexpr,
    BLOCK_R: tl.constexpr, NBC: tl.constexpr, BC: tl.constexpr, BCP: tl.constexpr,
):  # fmt: skip
    """Max |x| over finite elements, by group, into int32 bit patterns (atomic max).

    Non-negative floats order like their bit patterns, so the maximum is exact and independent
    of the order in which programs finish.
    """
    rows, blocks, cols, row_ok, col_ok, block_ok, mask, offsets = _tile(
        tl.program_id(0), tl.program_id(1), R, L, NBLK, BLOCK_R, NBC, BC, BCP
    )
    raw = tl.load(x_ptr + offsets, mask=mask, other=0)
    magnitude = _as_float(raw, DTYPE).to(tl.int32, bitcast=True) & _FLOAT32_MAGNITUDE
    magnitude = tl.where(mask & (magnitude < _FLOAT32_INF), magnitude, 0)
    if GROUP == GROUP_TENSOR:
        tl.atomic_max(out_ptr, tl.max(tl.max(tl.max(magnitude, axis=2), axis=1), axis=0))
    elif GROUP == GROUP_ROW:
        per_row = tl.max(tl.max(magnitude, axis=2), axis=1)
        tl.atomic_max(out_ptr + rows % RMOD, per_row, mask=row_ok)
    elif GROUP == GROUP_COL:
        per_col = tl.max(magnitude, axis=0)
        tl.atomic_max(out_ptr + cols, per_col, mask=col_ok)
    else:
        per_block = tl.max(magnitude, axis=2)
        index = _table_index(rows, blocks, RMOD, RB, RSTRIDE, OSTRIDE)
        tl.atomic_max(out_ptr + index, per_block, mask=row_ok[:, None] & block_ok[None, :])


@triton.jit
def _qdq_kernel(
    x_ptr, y_ptr, amax_ptr, global_ptr,
    R, L, NBLK, RMOD, RB, RSTRIDE, OSTRIDE,
    GROUP: tl.constexpr, SCALE: tl.constexpr, ELEM: tl.constexpr, DTYPE: tl.constexpr,
    MAXV: tl.constexpr, MINV: tl.constexpr, MANT: tl.constexpr, EMIN: tl.constexpr,
    BLOCK_R: tl.constexpr, NBC: tl.constexpr, BC: tl.constexpr, BCP: tl.constexpr,
):  # fmt: skip
    rows, blocks, cols, row_ok, col_ok, block_ok, mask, offsets = _tile(
        tl.program_id(0), tl.program_id(1), R, L, NBLK, BLOCK_R, NBC, BC, BCP
    )
    raw = tl.load(x_ptr + offsets, mask=mask, other=0)
    x = _as_float(raw, DTYPE)
    finite = (x.to(tl.int32, bitcast=True) & _FLOAT32_MAGNITUDE) < _FLOAT32_INF
    x = tl.where(finite, x, 0.0)

    # The amax of each element's group, shaped to broadcast against the [BR, NBC, BCP] tile.
    if GROUP == GROUP_TENSOR:
        amax = tl.load(amax_ptr)
    elif GROUP == GROUP_ROW:
        amax = tl.load(amax_ptr + rows % RMOD, mask=row_ok, other=1.0)[:, None, None]
    elif GROUP == GROUP_COL:
        amax = tl.load(amax_ptr + cols, mask=col_ok, other=1.0)[None, :, :]
    elif GROUP == GROUP_TABLE:
        index = _table_index(rows, blocks, RMOD, RB, RSTRIDE, OSTRIDE)
        ok = row_ok[:, None] & block_ok[None, :]
        amax = tl.load(amax_ptr + index, mask=ok, other=1.0)[:, :, None]
    else:
        bits = tl.where(mask & finite, x.to(tl.int32, bitcast=True) & _FLOAT32_MAGNITUDE, 0)
        amax = tl.max(bits, axis=2).to(tl.float32, bitcast=True)[:, :, None]

    if SCALE == SCALE_FP32:
        zero = amax <= _ZERO_AMAX
        safe = tl.where(zero, 1.0, amax)
        if ELEM == ELEM_INT:
            scale = tl.div_rn(safe * 0.0 + MAXV, safe)
            v = _clamp(x * scale, MINV, MAXV)
            codes = _round_to_grid(v, _INT_GRID, _INT_GRID)
            y = tl.div_rn(codes, tl.broadcast_to(scale, codes.shape))
        else:
            # MAXV * (1 / amax), rounded twice, as the reference computes it.
            scale = tl.div_rn(safe * 0.0 + 1.0, safe) * MAXV
            inverse = tl.div_rn(scale * 0.0 + 1.0, scale)
            v = _clamp(x * scale, MINV, MAXV)
            y = _round_to_grid(v, MANT, EMIN) * inverse
        y = tl.where(zero, x * 0.0, y)
    elif SCALE == SCALE_NVFP4:
        global_amax = tl.load(global_ptr)
        zero = global_amax <= _ZERO_AMAX
        safe = tl.where(zero, 1.0, global_amax)
        global_scale = tl.div_rn(safe, safe * 0.0 + _NVFP4_GLOBAL_DIVISOR)
        block_scale = tl.div_rn(amax, global_scale * MAXV + amax * 0.0)
        block_scale = tl.where(block_scale == 0.0, 1.0, block_scale)
        block_scale = _clamp(block_scale, _E4M3_MIN_SUBNORMAL, _E4M3_MAX)
        scale = _round_to_grid(block_scale, _E4M3_MANTISSA, _E4M3_MIN_NORMAL_EXPONENT)
        scale = scale * global_scale
        v = _clamp(tl.div_rn(x, tl.broadcast_to(scale, x.shape)), -MAXV, MAXV)
        y = _round_to_grid(v, MANT, EMIN) * scale
        y = tl.where(zero, x * 0.0, y)
    else:
        ratio = tl.div_rn(amax, amax * 0.0 + MAXV)
        ratio_bits = ratio.to(tl.int32, bitcast=True)
        biased = ratio_bits >> 23
        fraction = ratio_bits & 0x7FFFFF
        exponent = tl.where(
            biased > 0,
            biased - 127 + (fraction != 0).to(tl.int32),
            tl.where(fraction > 4194304, -126, -127),
        )
        exponent = tl.minimum(tl.maximum(exponent, _E8M0_MIN_EXPONENT), _E8M0_MAX_EXPONENT)
        v = _clamp(x * _pow2(-exponent), MINV, MAXV)
        if ELEM == ELEM_INT:
            codes = _round_to_grid(v, _INT_GRID, _INT_GRID)
        else:
            codes = _round_to_grid(v, MANT, EMIN)
        y = codes * _pow2(exponent)

    out = tl.where(finite, _to_dtype(y, DTYPE), raw)
    tl.store(y_ptr + offsets, out, mask=mask)
