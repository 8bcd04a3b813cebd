"""Fast fake quantization in PyTorch: the reference's bits in a few in-place passes.

:mod:`.reference` defines the numerics one exact operation at a time and allocates a tensor
for each; on the CPU that costs more than the model it quantizes. This module computes the same
bits (``tests/runtime/test_kernels_torch.py`` checks every format, dtype and edge case against
the reference) with the fewest full-size passes:

* everything that depends only on the amax (scales, zero-amax handling, NVFP4 block scales, MX
  exponents) is computed on the small per-group table, in the reference's order of operations,
  and broadcast; for a calibrated amax the tables are computed once and kept with the amax
  tensor until it changes;
* the element-wise work runs in place on one float32 buffer, which becomes the result;
* rounding to a small float grid divides by the element's rounding quantum (a power of two read
  from the float32 exponent bits), rounds half to even and multiplies back: exact, vectorised,
  and free of casts to FP8 types and of comparisons (both are slow on the CPU);
* non-finite inputs are detected with one reduction; only tensors that hold some pay for the
  masking that passes them through;
* values that need a second number per element (rounding quanta, block magnitudes) are made
  a chunk at a time in one scratch tensor, so that no second full-size tensor is allocated.

Anything else (a non-finite amax, a dtype or shape the reference refuses) is handed to the
reference, so the results never differ.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

from . import reference
from .formats import ElementFormat, QuantFormat
from .table import (
    E2M1_MAX,
    E4M3,
    E4M3_MAX,
    E4M3_MIN_SUBNORMAL,
    NVFP4_GLOBAL_DIVISOR,
    ZERO_AMAX,
)

__all__ = ["fake_quant", "fake_quant_", "reduce_amax"]

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# float32 bit fields
EXPONENT_MASK = 0x7F800000
MANTISSA_MASK = 0x007FFFFF
SIGN_AND_EXPONENT_MASK = -0x00800000  # 0xFF800000 as an int32
SIGN_CLEAR_MASK = 0x7FFFFFFF
# The smallest E8M0 scale, 2**-127 (a float32 subnormal).
MX_SMALLEST_SCALE = 2.0**-127
MANTISSA_BITS = 23
EXPONENT_BIAS = 127
# Elements per chunk of the passes that need a second value per element (at most a 1 MB
# scratch tensor, made for the call).
CHUNK = 1 << 18


# -- layout: the per-group table as a broadcastable view of the element buffer -----------------


@dataclass(frozen=True)
class Layout:
    """How a tensor's elements line up with its per-group amax table.

    ``padded`` is the shape of the float32 working buffer: the tensor's shape with ragged
    blocked axes rounded up to whole blocks (the padding is zeros, which never change a
    maximum). ``grouped`` views that buffer so that a table of shape ``table`` broadcasts
    against it; ``reduced`` are the axes of ``grouped`` that a group's maximum runs over (None:
    all of them).
    """

    shape: tuple[int, ...]
    padded: tuple[int, ...]
    grouped: tuple[int, ...]
    table: tuple[int, ...]
    reduced: tuple[int, ...] | None

    @property
    def ragged(self) -> bool:
        return self.padded != self.shape

    @property
    def crop(self) -> tuple[slice, ...]:
        """Index of the tensor's own elements in the padded buffer."""
        return tuple(slice(0, size) for size in self.shape)


@lru_cache(maxsize=4096)
def layout_of(shape: tuple[int, ...], fmt: QuantFormat) -> Layout:
    """The layout of ``fmt`` on a tensor of ``shape`` (at least one axis).

    Raises UnsupportedFormatError for blocks the tensor does not have, as the reference does.
    """
    if fmt.scheme == "tensor":
        return Layout(shape, shape, shape, (), None)
    if fmt.scheme == "channel":
        kept = fmt.kept_axes(len(shape))
        reduced = tuple(axis for axis in range(len(shape)) if axis not in kept)
        return Layout(shape, shape, shape, fmt.amax_shape(shape), reduced)
    if fmt.scheme in ("nvfp4", "mx"):
        rows, cols = 1, fmt.block_size
    else:
        rows, cols = fmt.block_layout(shape)
    across = -(-shape[-1] // cols)
    if len(shape) == 1 or rows == 1:
        outer = shape[:-1]
        return Layout(
            shape,
            (*outer, across * cols),
            (*outer, across, cols),
            (*outer, across, 1),
            (-1,),
        )
    outer = shape[:-2]
    down = -(-shape[-2] // rows)
    return Layout(
        shape,
        (*outer, down * rows, across * cols),
        (*outer, down, rows, across, cols),
        (*outer, down, 1, across, 1),
        (-3, -1),
    )


def _working_buffer(x: Tensor, layout: Layout) -> Tensor:
    """A fresh contiguous float32 copy of ``x``, zero-padded to whole blocks."""
    if not layout.ragged:
        if x.dtype == torch.float32:
            return x.clone(memory_format=torch.contiguous_format)
        return x.to(torch.float32, memory_format=torch.contiguous_format)
    buffer = torch.zeros(layout.padded, dtype=torch.float32, device=x.device)
    buffer[layout.crop].copy_(x)
    return buffer


def _group_max_abs(values: Tensor, layout: Layout) -> Tensor:
    """max |values| per group as float32, in the layout's table shape.

    NaN propagates and infinities count, so a non-finite result says the values hold some.
    No second full-size tensor is made.
    """
    reduced = layout.reduced
    if reduced is None:
        low, high = torch.aminmax(values)
    elif not reduced:
        return values.abs().float()
    elif reduced == (-1,) and values.dtype == torch.float32 and values.is_contiguous():
        return _row_block_max_abs(values, layout)
    else:
        grouped = values.view(layout.grouped) if values.is_contiguous() else values
        low = grouped.amin(dim=reduced, keepdim=True)
        high = grouped.amax(dim=reduced, keepdim=True)
    return torch.maximum(low.abs_(), high.abs_()).float()


def _row_block_max_abs(values: Tensor, layout: Layout) -> Tensor:
    """max |values| over blocks of consecutive float32 elements, on the bit patterns.

    Non-negative floats (and NaN above infinity) order like their bits, and PyTorch reduces
    short int32 rows several times faster than float32 ones (which also need a minimum and a
    maximum, or a full-size absolute value, to give max |x|).
    """
    block = layout.grouped[-1]
    bits = values.view(-1).view(torch.int32)
    total = bits.numel()
    result = torch.empty(total // block, dtype=torch.int32, device=values.device)
    chunk = max(block, CHUNK // block * block)
    workspace = torch.empty(min(total, chunk), dtype=torch.int32, device=values.device)
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        magnitude = workspace[: stop - start]
        torch.bitwise_and(bits[start:stop], SIGN_CLEAR_MASK, out=magnitude)
        torch.amax(magnitude.view(-1, block), dim=1, out=result[start // block : stop // block])
    return result.view(torch.float32).reshape(layout.table)


def _all_finite(values: Tensor) -> bool:
    """Whether a (small) tensor holds no NaN and no infinity."""
    if values.dim() == 0:
        return math.isfinite(values.item())
    return math.isfinite(values.abs().amax().item())


# -- the statistic ---------------------------------------------------------------------------


def reduce_amax(x: Tensor, fmt: QuantFormat) -> Tensor:
    """:func:`.reference.reduce_amax`, in one reduction over ``x``."""
    if x.dtype not in FLOAT_DTYPES or x.dim() == 0 or x.numel() == 0:
        return reference.reduce_amax(x, fmt)
    shape = tuple(x.shape)
    if fmt.scheme == "tensor" or (fmt.scheme == "nvfp4" and fmt.dynamic_blocks):
        amax = _group_max_abs(x, layout_of(shape, QuantFormat(fmt.element, "tensor")))
    else:
        layout = layout_of(shape, fmt)
        if layout.ragged or (layout.grouped != layout.shape and not x.is_contiguous()):
            return reference.reduce_amax(x, fmt)
        amax = _group_max_abs(x, layout).reshape(fmt.amax_shape(shape))
    if not _all_finite(amax):
        # NaN or infinities among the values: they must not enter the statistic.
        return reference.reduce_amax(x, fmt)
    return amax


# -- per-group tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tables:
    """What the element-wise pass needs per group, shaped to broadcast against the elements.

    Elements are brought into the element's range by multiplying by ``into`` (dividing, when
    ``divide_into``) and back by multiplying by ``back`` (dividing, when ``divide_back``).
    ``exact`` is False when the amax holds NaN or infinities, whose results are left to the
    reference. ``zero``
    means every finite value becomes a zero of its own sign (NVFP4 with a zero tensor amax).
    """

    into: Tensor
    back: Tensor
    divide_into: bool = False
    divide_back: bool = False
    exact: bool = True
    zero: bool = False


def _scaled_tables(amax: Tensor, element: ElementFormat, layout: Layout) -> Tables:
    """Scales of the formats with float32 scales (see ``reference._scaled_qdq``).

    Zero-amax groups multiply their values by 0 on the way in: every value becomes a zero of
    its own sign and stays one, which is the reference's ``values * 0.0``.
    """
    zero = amax <= ZERO_AMAX
    safe = torch.where(zero, torch.ones_like(amax), amax)
    limit = element.max_value
    if element.kind == "int":
        scale = torch.div(torch.full_like(safe, limit), safe)
        back = scale
    else:
        scale = torch.reciprocal(safe) * limit
        back = torch.reciprocal(scale)
    into = torch.where(zero, torch.zeros_like(scale), scale) if bool(zero.any()) else scale
    return Tables(
        into.reshape(layout.table),
        back.reshape(layout.table),
        divide_back=element.kind == "int",
        exact=_all_finite(amax),
    )


def _nvfp4_tables(blocks: Tensor, global_amax: Tensor, layout: Layout) -> Tables:
    """Block dequantization scales of NVFP4: ``reference.nvfp4_scale`` in fewer operations."""
    exact = _all_finite(global_amax) and _all_finite(blocks)
    zero = bool((global_amax <= ZERO_AMAX).all())
    if zero or not exact:
        return Tables(blocks, blocks, exact=exact, zero=zero)
    divisor = torch.full_like(global_amax, NVFP4_GLOBAL_DIVISOR)
    global_scale = torch.div(global_amax, divisor)
    block_scale = torch.div(blocks, E2M1_MAX * global_scale)
    block_scale.masked_fill_(block_scale == 0, 1.0)
    block_scale.clamp_(E4M3_MIN_SUBNORMAL, E4M3_MAX)
    round_to_float_grid_(block_scale, E4M3.mantissa_bits, E4M3.min_normal_exponent)
    scale = block_scale.mul_(global_scale).reshape(layout.table)
    return Tables(scale, scale, divide_into=True)


def _mx_tables(blocks: Tensor, element: ElementFormat, layout: Layout) -> Tables:
    """Power-of-two block scales of the MX formats: ``reference.mx_exponent`` in fewer steps.

    The scale 2**ceil(log2(a_b / dmax)) is the ratio's bit pattern rounded up to a power of two
    (adding 2**23 - 1 carries into the exponent unless the mantissa is zero). Ratios at or
    below 2**-127 (zero blocks, and subnormals the rounding would misplace) take the smallest
    scale, 2**-127; ratios stay below 2**126, under the largest.
    """
    ratio = torch.div(blocks, torch.full_like(blocks, element.max_value))
    tiny = ratio <= MX_SMALLEST_SCALE
    ratio.view(torch.int32).add_(MANTISSA_MASK).bitwise_and_(SIGN_AND_EXPONENT_MASK)
    back = ratio.masked_fill_(tiny, MX_SMALLEST_SCALE).reshape(layout.table)
    return Tables(torch.reciprocal(back), back, exact=_all_finite(blocks))


# Tables of calibrated amax tensors: computed on first use and kept with the tensor (weakly)
# until it is modified or replaced.
_TABLE_CACHE: MutableMapping[Tensor, tuple[tuple[object, ...], Tables]] = WeakIdKeyDictionary()


def _calibrated_tables(
    amax: Tensor, fmt: QuantFormat, layout: Layout, global_amax: Tensor | None
) -> Tables:
    fixed_global = None if global_amax is None else float(global_amax)
    key = (amax._version, amax.device, fmt, layout.shape, fixed_global)
    cached = _TABLE_CACHE.get(amax)
    if cached is not None and cached[0] == key:
        return cached[1]
    table = reference.check_amax(amax, torch.Size(layout.shape), fmt)
    if fmt.scheme == "nvfp4":
        if global_amax is not None:
            tensor_amax = global_amax.detach().to(table.device, torch.float32).reshape(())
        else:
            tensor_amax = table.amax()
        tables = _nvfp4_tables(table, tensor_amax, layout)
    else:
        tables = _scaled_tables(table, fmt.element, layout)
    _TABLE_CACHE[amax] = (key, tables)
    return tables


def _from_data(fmt: QuantFormat, amax: Tensor | None) -> bool:
    """Whether the scales of one call come (at least partly) from the data."""
    if fmt.scheme == "mx":
        return True
    if fmt.scheme == "nvfp4":
        return fmt.dynamic or amax is None or fmt.dynamic_blocks
    return fmt.dynamic or amax is None


def _tables(
    statistic: Tensor | None,
    fmt: QuantFormat,
    amax: Tensor | None,
    global_amax: Tensor | None,
    layout: Layout,
) -> Tables:
    """The tables of one call: calibrated ones from the cache, others from ``statistic``.

    ``statistic`` is the per-group max |x| (:func:`_group_max_abs`) when
    :func:`_from_data` says the call needs it.
    """
    if statistic is None:
        assert amax is not None
        return _calibrated_tables(amax, fmt, layout, global_amax)
    if fmt.scheme == "mx":
        return _mx_tables(statistic, fmt.element, layout)
    if fmt.scheme == "nvfp4":
        if fmt.dynamic or amax is None:
            tensor_amax = statistic.amax()
        else:
            tensor_amax = reference.check_amax(amax, torch.Size(layout.shape), fmt)
        return _nvfp4_tables(statistic, tensor_amax, layout)
    return _scaled_tables(statistic, fmt.element, layout)


# -- fake quantization ------------------------------------------------------------------------


def round_to_float_grid_(values: Tensor, mantissa_bits: int, min_exponent: int) -> Tensor:
    """:func:`.reference.round_to_float_grid` of finite contiguous float32 ``values``, in place.

    A value's rounding quantum is 2**(max(e, emin) - M), e being its exponent: the float32
    exponent field of the value, floored at emin's and lowered by M, is that power of two's bit
    pattern. Dividing by it and multiplying back are exact, and ``round`` rounds half to even
    keeping the sign of zero, as the reference does. The quanta are built a chunk at a time,
    so that no second full-size tensor is allocated.
    """
    floor = (min_exponent + EXPONENT_BIAS) << MANTISSA_BITS
    lowered = mantissa_bits << MANTISSA_BITS
    flat = values.view(-1)
    total = flat.numel()
    workspace = torch.empty(min(total, CHUNK), dtype=torch.int32, device=values.device)
    for start in range(0, total, CHUNK):
        stop = min(start + CHUNK, total)
        part = flat if stop - start == total else flat[start:stop]
        quantum = workspace if workspace.numel() == stop - start else workspace[: stop - start]
        torch.bitwise_and(part.view(torch.int32), EXPONENT_MASK, out=quantum)
        quantum.clamp_(min=floor).sub_(lowered)
        step = quantum.view(torch.float32)
        part.div_(step).round_().mul_(step)
    return values


def _element_range(fmt: QuantFormat) -> tuple[float, float]:
    element = fmt.element
    if fmt.scheme in ("nvfp4", "mx") or element.kind == "float":
        return -element.max_value, element.max_value
    return element.min_value, element.max_value


def _quantize_(
    buffer: Tensor, fmt: QuantFormat, tables: Tables, layout: Layout, source: Tensor | None
) -> None:
    """Fake-quantize into the float32 ``buffer``, in place.

    ``source``: the finite input, of the buffer's shape, read by the first pass (None when the
    buffer already holds the values).
    """
    grouped = buffer.view(layout.grouped)
    if source is not None and (source.dtype != torch.float32 or tables.zero):
        buffer.copy_(source)
        source = None
    if tables.zero:
        buffer.mul_(0.0)
        return
    first = torch.div if tables.divide_into else torch.mul
    if source is None:
        first(grouped, tables.into, out=grouped)
    else:
        first(source.view(layout.grouped), tables.into, out=grouped)
    low, high = _element_range(fmt)
    buffer.clamp_(low, high)
    if fmt.element.kind == "int":
        buffer.round_()
    else:
        round_to_float_grid_(buffer, fmt.element.mantissa_bits, fmt.element.min_normal_exponent)
    if tables.divide_back:
        grouped.div_(tables.back)
    else:
        grouped.mul_(tables.back)


def _quantize_direct(
    x: Tensor,
    fmt: QuantFormat,
    amax: Tensor | None,
    global_amax: Tensor | None,
    layout: Layout,
    into: Tensor | None,
) -> Tensor | None:
    """The common case, or None when it does not apply (the caller takes the general path).

    ``x`` is contiguous with whole blocks: one reduction finds out whether it is all finite
    (and gives the statistic when the scales come from the data); float32 values are read by
    the first pass, others converted into the buffer first. ``into`` is a contiguous float32
    tensor of x's shape to write the result to, or None for a new one.
    """
    values = x if x.dtype == torch.float32 else x.to(torch.float32)
    statistic = _group_max_abs(values, layout) if _from_data(fmt, amax) else None
    if not _all_finite(statistic if statistic is not None else values.sum()):
        return None
    tables = _tables(statistic, fmt, amax, global_amax, layout)
    if not tables.exact:
        return reference.fake_quant(x, fmt, amax, global_amax)
    if values is not x:
        _quantize_(values, fmt, tables, layout, source=None)
        return values.to(x.dtype)
    if into is None:
        into = torch.empty(layout.padded, dtype=torch.float32, device=x.device)
    _quantize_(into, fmt, tables, layout, source=None if into is x else x)
    return into


def _quantize_general(
    x: Tensor, fmt: QuantFormat, amax: Tensor | None, global_amax: Tensor | None, layout: Layout
) -> Tensor:
    """Any finite or non-finite input, ragged blocks, any memory layout.

    A padded copy with zeros in place of the non-finite values, which are put back at the end
    (NaN payloads included).
    """
    buffer = _working_buffer(x, layout)
    finite: Tensor | None = None
    if not _all_finite(buffer.sum()):
        finite = torch.isfinite(x)
        buffer.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    statistic = _group_max_abs(buffer, layout) if _from_data(fmt, amax) else None
    tables = _tables(statistic, fmt, amax, global_amax, layout)
    if not tables.exact:
        return reference.fake_quant(x, fmt, amax, global_amax)
    _quantize_(buffer, fmt, tables, layout, source=None)
    result = buffer[layout.crop] if layout.ragged else buffer
    if x.dtype != torch.float32:
        result = result.to(x.dtype)
    elif layout.ragged:
        result = result.contiguous()
    if finite is not None:
        result = torch.where(finite, result, x)
    return result


def _supported(x: Tensor) -> bool:
    return x.dtype in FLOAT_DTYPES and x.dim() > 0 and x.numel() > 0


def fake_quant(
    x: Tensor, fmt: QuantFormat, amax: Tensor | None = None, global_amax: Tensor | None = None
) -> Tensor:
    """:func:`.reference.fake_quant`, bit for bit, in a few in-place passes over one buffer."""
    if not _supported(x):
        return reference.fake_quant(x, fmt, amax, global_amax)
    layout = layout_of(tuple(x.shape), fmt)
    if x.is_contiguous() and not layout.ragged:
        result = _quantize_direct(x, fmt, amax, global_amax, layout, into=None)
        if result is not None:
            return result
    return _quantize_general(x, fmt, amax, global_amax, layout)


def fake_quant_(
    x: Tensor, fmt: QuantFormat, amax: Tensor | None = None, global_amax: Tensor | None = None
) -> Tensor:
    """:func:`fake_quant` written into ``x`` itself (returned); the same bits.

    Contiguous float32 tensors with whole blocks are quantized in place with no other full-size
    allocation; anything else is quantized as usual and copied back.
    """
    if not _supported(x):
        return x.copy_(reference.fake_quant(x, fmt, amax, global_amax))
    layout = layout_of(tuple(x.shape), fmt)
    if x.is_contiguous() and not layout.ragged:
        into = x if x.dtype == torch.float32 else None
        result = _quantize_direct(x, fmt, amax, global_amax, layout, into=into)
        if result is not None:
            return result if result is x else x.copy_(result)
    return x.copy_(_quantize_general(x, fmt, amax, global_amax, layout))
