"""Pure-PyTorch fake quantization: the definition of qrecipe's numerics.

Every format is computed in float32 with IEEE operations whose order is fixed here (the Triton
kernels reproduce it bit for bit). Rounding never relies on casts to FP8/FP4 types: values are
snapped to the element grid with exact arithmetic (``frexp``, scaling by powers of two built
from their bit patterns, and ``torch.round``, which rounds half to even).

Conventions shared by all formats (see ``docs/runtime-numerics.md``):

* non-finite inputs (NaN, +-inf) are returned unchanged and never enter an amax;
* an amax at or below 2**-24 quantizes every finite value to (signed) zero;
* results are rounded once, from float32 to the input dtype, to nearest even.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .formats import ElementFormat, QuantFormat
from .table import (
    E2M1,
    E2M1_MAX,
    E4M3,
    E4M3_MAX,
    E4M3_MIN_SUBNORMAL,
    E8M0_MAX_EXPONENT,
    E8M0_MIN_EXPONENT,
    NVFP4_GLOBAL_DIVISOR,
    ZERO_AMAX,
)

__all__ = [
    "block_amax",
    "ceil_log2",
    "check_amax",
    "expand_groups",
    "fake_quant",
    "finite_abs",
    "mx_exponent",
    "nvfp4_scale",
    "pow2",
    "reduce_amax",
    "round_to_float_grid",
]


# -- exact building blocks ----------------------------------------------------------------------


def pow2(exponent: Tensor) -> Tensor:
    """2**exponent as float32, exactly, for integer exponents in [-127, 127].

    Built from the bit pattern (2**-127 is the one subnormal needed: MX scales reach it).
    """
    exponent = exponent.to(torch.int32)
    normal = torch.bitwise_left_shift(torch.clamp(exponent + 127, min=1), 23)
    subnormal = torch.full_like(exponent, 1 << 22)
    return torch.where(exponent >= -126, normal, subnormal).view(torch.float32)


def round_to_float_grid(v: Tensor, mantissa_bits: int, min_exponent: int) -> Tensor:
    """Round float32 values to the nearest value with ``mantissa_bits`` fraction bits.

    The grid has spacing 2**(e - mantissa_bits) for values in [2**e, 2**(e+1)) with
    e >= min_exponent, and the subnormal spacing 2**(min_exponent - mantissa_bits) below
    2**min_exponent; ties go to the even neighbour. No upper bound is applied (callers clamp
    first). Signs, including that of zero, are kept. Inputs must be finite.
    """
    magnitude = v.abs()
    _, exponent = torch.frexp(magnitude)  # magnitude = m * 2**exponent, m in [0.5, 1)
    quantum = torch.clamp(exponent - 1, min=min_exponent) - mantissa_bits
    counts = torch.round(magnitude * pow2(-quantum))  # exact scaling; round half to even
    rounded = counts * pow2(quantum)
    return torch.where(v < 0, -rounded, rounded).where(v != 0, v)


def ceil_log2(value: Tensor) -> Tensor:
    """ceil(log2(value)) for positive finite float32 values, exactly (int32)."""
    mantissa, exponent = torch.frexp(value)
    return torch.where(mantissa == 0.5, exponent - 1, exponent).to(torch.int32)


def finite_abs(x: Tensor) -> Tensor:
    """|x| in float32, with NaN and infinities replaced by 0 (they never enter an amax)."""
    x = x.float()
    return torch.where(torch.isfinite(x), x.abs(), torch.zeros_like(x))


def _divide(numerator: Tensor | float, denominator: Tensor | float) -> Tensor:
    """Correctly rounded float32 division.

    Python numbers become tensors first: PyTorch computes ``number / tensor`` as a reciprocal
    times the number (and CUDA ``tensor / number`` as a multiplication by the reciprocal), which
    rounds twice.
    """
    reference = numerator if isinstance(numerator, Tensor) else denominator
    assert isinstance(reference, Tensor)
    if not isinstance(numerator, Tensor):
        numerator = torch.full_like(reference, numerator, dtype=torch.float32)
    if not isinstance(denominator, Tensor):
        denominator = torch.full_like(reference, denominator, dtype=torch.float32)
    return torch.div(numerator, denominator)


def _clamp(v: Tensor, low: float, high: float) -> Tensor:
    # Comparisons rather than min/max, so that the sign of zero never depends on the library.
    return torch.where(v > high, high, torch.where(v < low, low, v))


# -- layouts ----------------------------------------------------------------------------------


def _as_2d_blocks(shape: torch.Size, fmt: QuantFormat) -> tuple[int, int]:
    if len(shape) == 0:
        raise ValueError("block formats need a tensor with at least one axis")
    if fmt.scheme in ("nvfp4", "mx"):
        return 1, fmt.block_size
    return fmt.block_layout(shape)


def block_amax(values: Tensor, rows: int, cols: int) -> Tensor:
    """Max of non-negative ``values`` over blocks of rows x cols on the last two axes.

    The last block along an axis may be short (the tensor is padded with zeros, which cannot
    change a maximum of absolute values). A 1-D tensor takes blocks along its only axis.
    """
    one_d = values.dim() == 1
    if one_d:
        values = values.unsqueeze(0)
    *outer, height, width = values.shape
    blocks_down = -(-height // rows)
    blocks_across = -(-width // cols)
    padded = torch.nn.functional.pad(
        values, (0, blocks_across * cols - width, 0, blocks_down * rows - height)
    )
    grid = padded.reshape(*outer, blocks_down, rows, blocks_across, cols)
    result = grid.amax(dim=(-3, -1)) if grid.numel() else grid.sum(dim=(-3, -1))
    return result.squeeze(0) if one_d else result


def expand_groups(table: Tensor, shape: torch.Size, fmt: QuantFormat) -> Tensor:
    """Broadcast per-group values (the shape of :func:`reduce_amax`) to the element shape."""
    if fmt.scheme == "tensor" or table.dim() == 0:
        return table.expand(shape)
    if fmt.scheme == "channel":
        return table.expand(shape)
    rows, cols = _as_2d_blocks(shape, fmt)
    if len(shape) == 1:
        return table.repeat_interleave(cols, dim=0)[: shape[0]]
    expanded = table.repeat_interleave(rows, dim=-2)[..., : shape[-2], :]
    return expanded.repeat_interleave(cols, dim=-1)[..., : shape[-1]]


def check_amax(amax: Tensor, shape: torch.Size, fmt: QuantFormat) -> Tensor:
    """``amax`` as float32 in the statistic's shape for ``shape`` (a single value broadcasts)."""
    expected = fmt.amax_shape(shape)
    amax = amax.detach().float()
    if tuple(amax.shape) == expected:
        return amax
    count = 1
    for size in expected:
        count *= size
    if amax.numel() == count:
        return amax.reshape(expected)
    if amax.numel() == 1:
        return amax.reshape(()).expand(expected)
    raise ValueError(
        f"amax of shape {tuple(amax.shape)} does not fit {fmt.describe()} on a tensor of shape "
        f"{tuple(shape)} (expected {expected} or a single value)"
    )


# -- the calibration statistic -------------------------------------------------------------------


def reduce_amax(x: Tensor, fmt: QuantFormat) -> Tensor:
    """max |x| per tensor, channel or block, as :func:`qrecipe.runtime.kernels.reduce_amax`."""
    values = finite_abs(x)
    shape = x.shape
    if fmt.scheme == "tensor" or (fmt.scheme == "nvfp4" and fmt.dynamic_blocks):
        return values.amax() if values.numel() else values.new_zeros(())
    if fmt.scheme == "channel":
        kept = fmt.kept_axes(x.dim())
        reduced = tuple(a for a in range(x.dim()) if a not in kept)
        if not reduced:
            return values
        if values.numel() == 0:
            return values.sum(dim=reduced, keepdim=True)
        return values.amax(dim=reduced, keepdim=True)
    rows, cols = _as_2d_blocks(shape, fmt)
    return block_amax(values, rows, cols)


# -- fake quantization ------------------------------------------------------------------------


def _scaled_qdq(values: Tensor, amax: Tensor, element: ElementFormat) -> Tensor:
    """QDQ of finite float32 ``values`` with per-element amax (FP32 scales)."""
    zero = amax <= ZERO_AMAX
    safe_amax = torch.where(zero, torch.ones_like(amax), amax)
    limit = element.max_value
    if element.kind == "int":
        scale = _divide(limit, safe_amax)
        codes = torch.round(_clamp(values * scale, element.min_value, limit))
        result = codes / scale
    else:
        # 448 * (1 / amax), rounded twice: the reference implementation's order of operations.
        scale = torch.reciprocal(safe_amax) * limit
        inverse = torch.reciprocal(scale)
        clamped = _clamp(values * scale, -limit, limit)
        grid = round_to_float_grid(clamped, element.mantissa_bits, element.min_normal_exponent)
        result = grid * inverse
    return torch.where(zero, values * 0.0, result)


def nvfp4_scale(block: Tensor, global_amax: Tensor) -> Tensor:
    """NVFP4 dequantization scales: FP8 E4M3 block scales times the float32 global scale.

    ``block`` holds block amaxes (one per element, or one per block), ``global_amax`` the
    tensor amax. A global amax at or below ZERO_AMAX is replaced by 1 (callers return zeros).
    """
    zero = global_amax <= ZERO_AMAX
    safe_global = torch.where(zero, torch.ones_like(global_amax), global_amax)
    global_scale = _divide(safe_global, NVFP4_GLOBAL_DIVISOR)
    block_scale = block / (E2M1_MAX * global_scale)
    block_scale = torch.where(block_scale == 0, torch.ones_like(block_scale), block_scale)
    block_scale = _clamp(block_scale, E4M3_MIN_SUBNORMAL, E4M3_MAX)
    block_scale = round_to_float_grid(block_scale, E4M3.mantissa_bits, E4M3.min_normal_exponent)
    return block_scale * global_scale


def _nvfp4_qdq(values: Tensor, block: Tensor, global_amax: Tensor) -> Tensor:
    """NVFP4 QDQ of finite ``values`` given per-element block amax and the tensor amax."""
    zero = global_amax <= ZERO_AMAX
    scale = nvfp4_scale(block, global_amax)
    clamped = _clamp(values / scale, -E2M1_MAX, E2M1_MAX)
    result = round_to_float_grid(clamped, E2M1.mantissa_bits, E2M1.min_normal_exponent) * scale
    return torch.where(zero, values * 0.0, result)


def mx_exponent(block: Tensor, element: ElementFormat) -> Tensor:
    """The E8M0 scale exponents (int32) of MX blocks with amax ``block``."""
    ratio = _divide(block, element.max_value)
    exponent = torch.where(
        ratio > 0, ceil_log2(torch.where(ratio > 0, ratio, 1.0)), E8M0_MIN_EXPONENT
    )
    return torch.clamp(exponent, E8M0_MIN_EXPONENT, E8M0_MAX_EXPONENT)


def _mx_qdq(values: Tensor, block: Tensor, element: ElementFormat) -> Tensor:
    """MX QDQ of finite ``values`` given the per-element block amax (E8M0 scales)."""
    limit = element.max_value
    exponent = mx_exponent(block, element)
    scaled = values * pow2(-exponent)
    if element.kind == "int":
        clamped = _clamp(scaled, -limit, limit)
        codes = torch.round(clamped)
    else:
        clamped = _clamp(scaled, -limit, limit)
        codes = round_to_float_grid(clamped, element.mantissa_bits, element.min_normal_exponent)
    return codes * pow2(exponent)


def fake_quant(
    x: Tensor, fmt: QuantFormat, amax: Tensor | None = None, global_amax: Tensor | None = None
) -> Tensor:
    """Quantize-dequantize ``x`` in its dtype; see :func:`qrecipe.runtime.kernels.fake_quant`."""
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"fake_quant supports float32, float16 and bfloat16 tensors, not {x.dtype}")
    shape = x.shape
    if x.numel() == 0:
        return x.clone()
    x32 = x.float()
    finite = torch.isfinite(x32)
    values = torch.where(finite, x32, torch.zeros_like(x32))

    if fmt.scheme == "mx":
        block = expand_groups(reduce_amax(x, fmt), shape, fmt)
        result = _mx_qdq(values, block, fmt.element)
    elif fmt.scheme == "nvfp4":
        # The per-block statistic, whether it comes from the data or from calibration.
        block_format = QuantFormat(element=fmt.element, scheme="nvfp4", block_sizes=fmt.block_sizes)
        if fmt.dynamic or amax is None:
            blocks = reduce_amax(x, block_format)
            tensor_amax = finite_abs(x).amax()
        elif fmt.dynamic_blocks:
            blocks = reduce_amax(x, block_format)
            tensor_amax = check_amax(amax, shape, fmt)
        else:
            blocks = check_amax(amax, shape, fmt)
            if global_amax is not None:
                tensor_amax = global_amax.detach().float().reshape(())
            else:
                tensor_amax = blocks.amax() if blocks.numel() else blocks.new_zeros(())
        block = expand_groups(blocks, shape, block_format)
        result = _nvfp4_qdq(values, block, tensor_amax)
    else:
        table = reduce_amax(x, fmt) if amax is None or fmt.dynamic else check_amax(amax, shape, fmt)
        result = _scaled_qdq(values, expand_groups(table, shape, fmt), fmt.element)
    return torch.where(finite, result.to(x.dtype), x)
