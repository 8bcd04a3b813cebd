# Triton kernel arguments are typed by the Triton compiler from the call, not by annotations.
# ruff: noqa: ANN001
"""Triton kernels for fake quantization and amax reduction, bit-exact with :mod:`.reference`.

Design:

* Every tensor is seen as a row-major ``[R, L]`` matrix and processed in tiles of
  ``BLOCK_R`` rows x ``NBC`` column blocks x ``BC`` columns (``BCP`` = ``BC`` rounded up to a
  power of two, extra lanes masked). Block formats put one quantization block (or one 2-D
  block's row segment) in each ``[row, column block]`` cell, so block amaxes are in-register
  reductions and scales are computed once per block, not per element.
* One read and one write per element. Scales are computed in-kernel from amax on the reduced
  (group-shaped) vectors. Dynamic block formats (NVFP4, MX) need no extra pass; a per-tensor or
  per-channel amax taken from the data costs one reduction pass first.
* All rounding is done on integer bit patterns (never through float casts to narrow types), and
  every float operation is a single IEEE operation (``div_rn`` for division; fusion of multiply
  and add is disabled), so the interpreter (``TRITON_INTERPRET=1``) and the GPU agree bit for bit.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .formats import E4M3_MAX, E4M3_MIN_SUBNORMAL, ZERO_AMAX, QuantFormat
from .reference import check_amax

__all__ = ["fake_quant", "interpreting", "reduce_amax"]

# Grouping of elements under one amax.
GROUP_TENSOR = 0  # one amax
GROUP_ROW = 1  # amax[row % RMOD]
GROUP_COL = 2  # amax[column]
GROUP_TABLE = 3  # amax[((row % RMOD) // RB) * RSTRIDE + (row // RMOD) * OSTRIDE + column block]
GROUP_DATA = 4  # per-block amax taken from the tile itself

# How an amax becomes a scale.
SCALE_FP32 = 0  # scale = max_value / amax
SCALE_NVFP4 = 1  # E4M3 block scale under a per-tensor FP32 scale
SCALE_E8M0 = 2  # power-of-two block scale

ELEM_INT = 0
ELEM_FLOAT = 1

_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}

# Compiled kernels may only read module globals that are tl.constexpr (the interpreter is more
# lenient, which is why a compile-for-GPU test exists).
# Rounding to integers reuses the float-grid rounding with a grid that has spacing 1 up to 2**23.
_INT_GRID = tl.constexpr(22)
_ZERO_AMAX = tl.constexpr(ZERO_AMAX)
_E4M3_MAX = tl.constexpr(E4M3_MAX)
_E4M3_MIN_SUBNORMAL = tl.constexpr(E4M3_MIN_SUBNORMAL)


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


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
    magnitude = bits & 0x7FFFFFFF
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
    if DTYPE == 2:
        bits = raw.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
        return (bits << 16).to(tl.float32, bitcast=True)
    else:
        return raw.to(tl.float32)


@triton.jit
def _to_dtype(y, DTYPE: tl.constexpr):
    """Round float32 to the output dtype, to nearest even."""
    if DTYPE == 2:
        bits = y.to(tl.int32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.to(tl.int16).to(tl.bfloat16, bitcast=True)
    elif DTYPE == 1:
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
    x_ptr,
    out_ptr,
    R,
    L,
    NBLK,
    RMOD,
    RB,
    RSTRIDE,
    OSTRIDE,
    GROUP: tl.constexpr,
    DTYPE: tl.constexpr,
    BLOCK_R: tl.constexpr,
    NBC: tl.constexpr,
    BC: tl.constexpr,
    BCP: tl.constexpr,
):
    """Max |x| over finite elements, by group, into int32 bit patterns (atomic max).

    Non-negative floats order like their bit patterns, so the maximum is exact and independent
    of the order in which programs finish.
    """
    pid_r = tl.program_id(0)
    pid_c = tl.program_id(1)
    rows, blocks, cols, row_ok, col_ok, block_ok, mask, offsets = _tile(
        pid_r, pid_c, R, L, NBLK, BLOCK_R, NBC, BC, BCP
    )
    raw = tl.load(x_ptr + offsets, mask=mask, other=0)
    magnitude = _as_float(raw, DTYPE).to(tl.int32, bitcast=True) & 0x7FFFFFFF
    magnitude = tl.where(mask & (magnitude < 0x7F800000), magnitude, 0)
    if GROUP == 0:
        tl.atomic_max(out_ptr, tl.max(tl.max(tl.max(magnitude, axis=2), axis=1), axis=0))
    elif GROUP == 1:
        per_row = tl.max(tl.max(magnitude, axis=2), axis=1)
        tl.atomic_max(out_ptr + rows % RMOD, per_row, mask=row_ok)
    elif GROUP == 2:
        per_col = tl.max(magnitude, axis=0)
        tl.atomic_max(out_ptr + cols, per_col, mask=col_ok)
    else:
        per_block = tl.max(magnitude, axis=2)
        index = _table_index(rows, blocks, RMOD, RB, RSTRIDE, OSTRIDE)
        tl.atomic_max(out_ptr + index, per_block, mask=row_ok[:, None] & block_ok[None, :])


@triton.jit
def _qdq_kernel(
    x_ptr,
    y_ptr,
    amax_ptr,
    global_ptr,
    R,
    L,
    NBLK,
    RMOD,
    RB,
    RSTRIDE,
    OSTRIDE,
    GROUP: tl.constexpr,
    SCALE: tl.constexpr,
    ELEM: tl.constexpr,
    DTYPE: tl.constexpr,
    MAXV: tl.constexpr,
    MINV: tl.constexpr,
    MANT: tl.constexpr,
    EMIN: tl.constexpr,
    BLOCK_R: tl.constexpr,
    NBC: tl.constexpr,
    BC: tl.constexpr,
    BCP: tl.constexpr,
):
    pid_r = tl.program_id(0)
    pid_c = tl.program_id(1)
    rows, blocks, cols, row_ok, col_ok, block_ok, mask, offsets = _tile(
        pid_r, pid_c, R, L, NBLK, BLOCK_R, NBC, BC, BCP
    )
    raw = tl.load(x_ptr + offsets, mask=mask, other=0)
    x = _as_float(raw, DTYPE)
    finite = (x.to(tl.int32, bitcast=True) & 0x7FFFFFFF) < 0x7F800000
    x = tl.where(finite, x, 0.0)

    # The amax of each element's group, shaped to broadcast against the [BR, NBC, BCP] tile.
    if GROUP == 0:
        amax = tl.load(amax_ptr)
    elif GROUP == 1:
        amax = tl.load(amax_ptr + rows % RMOD, mask=row_ok, other=1.0)[:, None, None]
    elif GROUP == 2:
        amax = tl.load(amax_ptr + cols, mask=col_ok, other=1.0)[None, :, :]
    elif GROUP == 3:
        index = _table_index(rows, blocks, RMOD, RB, RSTRIDE, OSTRIDE)
        ok = row_ok[:, None] & block_ok[None, :]
        amax = tl.load(amax_ptr + index, mask=ok, other=1.0)[:, :, None]
    else:
        bits = tl.where(mask & finite, x.to(tl.int32, bitcast=True) & 0x7FFFFFFF, 0)
        amax = tl.max(bits, axis=2).to(tl.float32, bitcast=True)[:, :, None]

    if SCALE == 0:
        zero = amax <= _ZERO_AMAX
        safe = tl.where(zero, 1.0, amax)
        if ELEM == 0:
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
    elif SCALE == 1:
        global_amax = tl.load(global_ptr)
        zero = global_amax <= _ZERO_AMAX
        safe = tl.where(zero, 1.0, global_amax)
        global_scale = tl.div_rn(safe, safe * 0.0 + 2688.0)
        block_scale = tl.div_rn(amax, global_scale * 6.0 + amax * 0.0)
        block_scale = tl.where(block_scale == 0.0, 1.0, block_scale)
        block_scale = _clamp(block_scale, _E4M3_MIN_SUBNORMAL, _E4M3_MAX)
        scale = _round_to_grid(block_scale, 3, -6) * global_scale
        v = _clamp(tl.div_rn(x, tl.broadcast_to(scale, x.shape)), -MAXV, MAXV)
        y = _round_to_grid(v, 1, 0) * scale
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
        exponent = tl.minimum(tl.maximum(exponent, -127), 127)
        v = _clamp(x * _pow2(-exponent), MINV, MAXV)
        if ELEM == 0:
            codes = _round_to_grid(v, _INT_GRID, _INT_GRID)
        else:
            codes = _round_to_grid(v, MANT, EMIN)
        y = codes * _pow2(exponent)

    out = tl.where(finite, _to_dtype(y, DTYPE), raw)
    tl.store(y_ptr + offsets, out, mask=mask)


# -- host side ------------------------------------------------------------------------------------


def _next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


class _Layout:
    """How a tensor maps onto the kernels' ``[R, L]`` view and grouping."""

    def __init__(
        self, x: Tensor, fmt: QuantFormat, *, from_data: bool, per_tensor: bool = False
    ) -> None:
        shape = tuple(x.shape)
        self.permutation: list[int] | None = None
        self.rmod, self.rb, self.rstride, self.ostride = 1, 1, 0, 0
        self.block = 0  # column block length; 0 = not a block format
        if (
            per_tensor
            or fmt.scheme == "tensor"
            or (fmt.scheme == "nvfp4" and fmt.dynamic_blocks and not from_data)
        ):
            self.group = GROUP_TENSOR
            self.rows, self.cols = _matrix(shape)
        elif fmt.scheme == "channel":
            kept = list(fmt.kept_axes(len(shape)))
            if kept and kept != list(range(kept[0], kept[0] + len(kept))):
                # Bring the kept axes together (in order) so channels are contiguous runs.
                others = [a for a in range(len(shape)) if a not in kept]
                first = others[: sum(1 for a in others if a < kept[0])]
                self.permutation = first + kept + others[len(first) :]
                shape = tuple(shape[a] for a in self.permutation)
                kept = list(range(len(first), len(first) + len(kept)))
            if not kept:
                self.group = GROUP_TENSOR
                self.rows, self.cols = _matrix(shape)
            else:
                outer = _prod(shape[: kept[0]])
                channels = _prod(shape[kept[0] : kept[-1] + 1])
                inner = _prod(shape[kept[-1] + 1 :])
                if inner == 1:
                    self.group = GROUP_COL
                    self.rows, self.cols = outer, channels
                else:
                    self.group = GROUP_ROW
                    self.rows, self.cols = outer * channels, inner
                    self.rmod = channels
        else:
            if len(shape) == 0:
                raise ValueError("block formats need a tensor with at least one axis")
            if fmt.scheme in ("nvfp4", "mx"):
                block_rows, block_cols = 1, fmt.block_size
            else:
                block_rows, block_cols = fmt.block_layout(shape)
            self.rows, self.cols = _matrix(shape)
            height = shape[-2] if len(shape) >= 2 else 1
            blocks_down = -(-height // block_rows)
            blocks_across = -(-self.cols // block_cols)
            self.block = block_cols
            self.rmod, self.rb = max(height, 1), block_rows
            self.rstride, self.ostride = blocks_across, blocks_down * blocks_across
            from_tile = from_data and fmt.scheme in ("nvfp4", "mx")
            self.group = GROUP_DATA if from_tile else GROUP_TABLE
        self.shape = shape

    def view(self, x: Tensor) -> Tensor:
        if self.permutation is not None:
            x = x.permute(self.permutation)
        return x.contiguous().reshape(self.rows, self.cols)

    def restore(self, y: Tensor) -> Tensor:
        y = y.reshape(self.shape)
        if self.permutation is not None:
            inverse = [0] * len(self.permutation)
            for position, axis in enumerate(self.permutation):
                inverse[axis] = position
            y = y.permute(inverse).contiguous()
        return y

    def tiles(self) -> tuple[tuple[int, int], dict[str, int]]:
        target = 1 << 16 if interpreting() else 4096
        if self.block:
            bc = self.block
            bcp = _next_pow2(bc)
            nblk = -(-self.cols // bc)
            nbc = max(1, min(_next_pow2(nblk), max(1, 1024 // bcp)))
        else:
            bcp = min(_next_pow2(self.cols), 1024)
            bc = bcp
            nblk = -(-self.cols // bc)
            nbc = 1
        block_r = max(1, min(_next_pow2(self.rows), target // (nbc * bcp)))
        grid = (-(-self.rows // block_r), -(-nblk // nbc))
        return grid, {"BLOCK_R": block_r, "NBC": nbc, "BC": bc, "BCP": bcp, "NBLK": nblk}


def _prod(values: tuple[int, ...] | list[int]) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


def _matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    return _prod(shape[:-1]), int(shape[-1])


def _launch_options() -> dict[str, object]:
    # Fusing a multiply and an add into one FMA changes rounding; the numerics forbid it.
    return {} if interpreting() else {"enable_fp_fusion": False, "num_warps": 8}


def _check_device(x: Tensor) -> None:
    if not x.is_cuda and not interpreting():
        raise RuntimeError(
            "the Triton backend runs on CUDA tensors (or on CPU with TRITON_INTERPRET=1); "
            "use backend='torch' for CPU tensors"
        )


def _reduce(x: Tensor, fmt: QuantFormat, layout: _Layout) -> Tensor:
    grid, tiles = layout.tiles()
    count = 1 if layout.group == GROUP_TENSOR else _groups(layout, fmt, x)
    out = torch.zeros(count, dtype=torch.int32, device=x.device)
    matrix = layout.view(x)
    if matrix.numel():
        _amax_kernel[grid](
            matrix, out, layout.rows, layout.cols, tiles["NBLK"],
            layout.rmod, layout.rb, layout.rstride, layout.ostride,
            GROUP=layout.group, DTYPE=_DTYPE_CODES[x.dtype],
            BLOCK_R=tiles["BLOCK_R"], NBC=tiles["NBC"], BC=tiles["BC"], BCP=tiles["BCP"],
            **_launch_options(),
        )  # fmt: skip
    return out.view(torch.float32)


def _groups(layout: _Layout, fmt: QuantFormat, x: Tensor) -> int:
    if layout.group == GROUP_ROW:
        return layout.rmod
    if layout.group == GROUP_COL:
        return layout.cols
    return max(1, layout.ostride * max(1, layout.rows // max(layout.rmod, 1)))


def reduce_amax(x: Tensor, fmt: QuantFormat) -> Tensor:
    """The calibration statistic of ``x`` for ``fmt`` (float32), computed by a Triton kernel."""
    _check_device(x)
    layout = _Layout(x, fmt, from_data=False)
    flat = _reduce(x, fmt, layout)
    return flat.reshape(fmt.amax_shape(x.shape))


def fake_quant(x: Tensor, fmt: QuantFormat, amax: Tensor | None = None) -> Tensor:
    """Quantize-dequantize ``x`` with the Triton kernels (same bits as the reference)."""
    _check_device(x)
    if x.dtype not in _DTYPE_CODES:
        raise TypeError(f"fake_quant supports float32, float16 and bfloat16 tensors, not {x.dtype}")
    if x.numel() == 0:
        return x.clone()
    shape = x.shape
    element = fmt.element
    global_amax = None
    if fmt.scheme in ("nvfp4", "mx"):
        static_blocks = fmt.scheme == "nvfp4" and not fmt.dynamic_blocks
        use_table = static_blocks and amax is not None and not fmt.dynamic
        layout = _Layout(x, fmt, from_data=not use_table)
        if fmt.scheme == "nvfp4":
            if use_table:
                assert amax is not None
                table = check_amax(amax, shape, fmt).to(x.device).contiguous().reshape(-1)
                # As in the reference: a NaN in the table makes the whole tensor NaN.
                global_amax = table.amax() if table.numel() else table.new_zeros(())
                group_amax = table
            else:
                if amax is not None and fmt.dynamic_blocks and not fmt.dynamic:
                    global_amax = check_amax(amax, shape, fmt).to(x.device)
                else:
                    tensor_layout = _Layout(x, fmt, from_data=False, per_tensor=True)
                    global_amax = _reduce(x, fmt, tensor_layout).reshape(())
                group_amax = global_amax
            scale_kind = SCALE_NVFP4
        else:
            group_amax = torch.ones(1, dtype=torch.float32, device=x.device)
            scale_kind = SCALE_E8M0
    else:
        layout = _Layout(x, fmt, from_data=False)
        if fmt.dynamic or amax is None:
            group_amax = _reduce(x, fmt, layout)
        else:
            # Flattening a per-channel amax (size 1 on reduced axes) orders it like the
            # kernels' channel index, with or without the layout's permutation.
            group_amax = check_amax(amax, shape, fmt).to(x.device).contiguous().reshape(-1)
        scale_kind = SCALE_FP32

    if global_amax is None:
        global_amax = torch.zeros((), dtype=torch.float32, device=x.device)
    group_amax = group_amax.float().contiguous().reshape(-1)
    global_amax = global_amax.float().contiguous().reshape(-1)
    matrix = layout.view(x)
    out = torch.empty_like(matrix)
    grid, tiles = layout.tiles()
    # MX integers are symmetric (-127..127); other formats use the element's own range.
    min_value = -element.max_value if fmt.scheme == "mx" else element.min_value
    if element.kind == "int":
        elem, mant, emin = ELEM_INT, 0, 0
    else:
        elem, mant, emin = ELEM_FLOAT, element.mantissa_bits, element.min_normal_exponent
    _qdq_kernel[grid](
        matrix, out, group_amax, global_amax, layout.rows, layout.cols, tiles["NBLK"],
        layout.rmod, layout.rb, layout.rstride, layout.ostride,
        GROUP=layout.group, SCALE=scale_kind, ELEM=elem, DTYPE=_DTYPE_CODES[x.dtype],
        MAXV=float(element.max_value), MINV=min_value, MANT=mant, EMIN=emin,
        BLOCK_R=tiles["BLOCK_R"], NBC=tiles["NBC"], BC=tiles["BC"], BCP=tiles["BCP"],
        **_launch_options(),
    )  # fmt: skip
    return layout.restore(out)
