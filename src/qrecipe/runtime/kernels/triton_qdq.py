"""Triton fake quantization and amax reduction, bit-exact with :mod:`.reference`: the host side.

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

This module computes the layout of a tensor and launches the kernels of :mod:`.triton_kernels`.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from .formats import QuantFormat
from .reference import check_amax
from .triton_kernels import (
    DTYPE_BFLOAT16,
    DTYPE_FLOAT16,
    DTYPE_FLOAT32,
    ELEM_FLOAT,
    ELEM_INT,
    GROUP_COL,
    GROUP_DATA,
    GROUP_ROW,
    GROUP_TABLE,
    GROUP_TENSOR,
    SCALE_E8M0,
    SCALE_FP32,
    SCALE_NVFP4,
    _amax_kernel,
    _qdq_kernel,
)

__all__ = ["fake_quant", "interpreting", "reduce_amax"]

_DTYPE_CODES: dict[torch.dtype, int] = {
    torch.float32: DTYPE_FLOAT32.value,
    torch.float16: DTYPE_FLOAT16.value,
    torch.bfloat16: DTYPE_BFLOAT16.value,
}


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


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
            self.group = GROUP_TENSOR.value
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
                self.group = GROUP_TENSOR.value
                self.rows, self.cols = _matrix(shape)
            else:
                outer = _prod(shape[: kept[0]])
                channels = _prod(shape[kept[0] : kept[-1] + 1])
                inner = _prod(shape[kept[-1] + 1 :])
                if inner == 1:
                    self.group = GROUP_COL.value
                    self.rows, self.cols = outer, channels
                else:
                    self.group = GROUP_ROW.value
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
            self.group = GROUP_DATA.value if from_tile else GROUP_TABLE.value
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
    count = 1 if layout.group == GROUP_TENSOR.value else _groups(layout)
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


def _groups(layout: _Layout) -> int:
    if layout.group == GROUP_ROW.value:
        return layout.rmod
    if layout.group == GROUP_COL.value:
        return layout.cols
    return max(1, layout.ostride * max(1, layout.rows // max(layout.rmod, 1)))


def reduce_amax(x: Tensor, fmt: QuantFormat) -> Tensor:
    """The calibration statistic of ``x`` for ``fmt`` (float32), computed by a Triton kernel."""
    _check_device(x)
    layout = _Layout(x, fmt, from_data=False)
    flat = _reduce(x, fmt, layout)
    return flat.reshape(fmt.amax_shape(x.shape))


def fake_quant(
    x: Tensor, fmt: QuantFormat, amax: Tensor | None = None, global_amax: Tensor | None = None
) -> Tensor:
    """Quantize-dequantize ``x`` with the Triton kernels (same bits as the reference)."""
    tensor_amax = global_amax
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
                if tensor_amax is not None:
                    global_amax = tensor_amax.detach().float().reshape(()).to(x.device)
                else:
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
            scale_kind = SCALE_NVFP4.value
        else:
            group_amax = torch.ones(1, dtype=torch.float32, device=x.device)
            scale_kind = SCALE_E8M0.value
    else:
        layout = _Layout(x, fmt, from_data=False)
        if fmt.dynamic or amax is None:
            group_amax = _reduce(x, fmt, layout)
        else:
            # Flattening a per-channel amax (size 1 on reduced axes) orders it like the
            # kernels' channel index, with or without the layout's permutation.
            group_amax = check_amax(amax, shape, fmt).to(x.device).contiguous().reshape(-1)
        scale_kind = SCALE_FP32.value

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
        elem, mant, emin = ELEM_INT.value, 0, 0
    else:
        elem, mant, emin = ELEM_FLOAT.value, element.mantissa_bits, element.min_normal_exponent
    _qdq_kernel[grid](
        matrix, out, group_amax, global_amax, layout.rows, layout.cols, tiles["NBLK"],
        layout.rmod, layout.rb, layout.rstride, layout.ostride,
        GROUP=layout.group, SCALE=scale_kind, ELEM=elem, DTYPE=_DTYPE_CODES[x.dtype],
        MAXV=float(element.max_value), MINV=min_value, MANT=mant, EMIN=emin,
        BLOCK_R=tiles["BLOCK_R"], NBC=tiles["NBC"], BC=tiles["BC"], BCP=tiles["BCP"],
        **_launch_options(),
    )  # fmt: skip
    return layout.restore(out)
