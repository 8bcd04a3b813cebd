"""Number formats: turning one flat quantizer-attribute object into a :class:`QuantFormat`.

A :class:`QuantFormat` says *what* to compute; :mod:`.reference` (pure PyTorch) and
:mod:`.triton_qdq` (Triton kernels) say *how*, bit for bit identically. The arithmetic itself is
documented in ``docs/runtime-numerics.md``.

This module imports nothing heavier than the standard library, so a recipe can be checked for
formats the runtime can run without loading torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .table import (
    FLOAT_ELEMENTS,
    INT_BITS,
    MX_SCALE_BITS,
    MX_SCALE_NAME,
    MXINT_BITS,
    MXINT_NAME,
    NVFP4_ELEMENT,
    NVFP4_SCALE,
    NVFP4_SCALE_BITS,
    float_element,
)

__all__ = [
    "SUPPORTED_FORMATS",
    "ElementFormat",
    "QuantFormat",
    "UnsupportedFormatError",
]


def _supported_formats() -> list[str]:
    """One line per family of formats the kernels run, written from the format table."""
    fewest, most = INT_BITS[0], INT_BITS[-1]
    fp8 = " and ".join(
        f"{e.name} ({list(e.key)})" for e in FLOAT_ELEMENTS.values() if e.fp32_scales
    )
    families: dict[str, list[str]] = {}
    by_width = sorted(FLOAT_ELEMENTS.values(), key=lambda e: e.exponent_bits + e.mantissa_bits)
    for element in by_width:
        families.setdefault(element.mx_name.split()[0], []).append(str(list(element.key)))
    mx = ", ".join(f"{' or '.join(keys)} ({family})" for family, keys in families.items())
    return [
        f"INT{fewest}..INT{most} (num_bits {fewest}-{most}; unsigned and narrow_range allowed): "
        "per tensor (axis null), per channel (axis int or list), per block (block_sizes on the "
        "last one or two axes, type static)",
        f"FP8 {fp8}: per tensor, per channel, per block (type static, 1-D or 2-D blocks on the "
        "last two axes)",
        "dynamic per-tensor / per-channel / per-token INT and FP8 (type dynamic, or block_sizes "
        "whose axis entries are all null)",
        f"NVFP4: num_bits {list(NVFP4_ELEMENT.key)} with block_sizes {{-1: N, type: "
        f"dynamic|static, scale_bits: {list(NVFP4_SCALE_BITS)}}}",
        f"MX: block_sizes {{-1: N, type: dynamic, scale_bits: {list(MX_SCALE_BITS)}}} with "
        f"num_bits {mx}, {MXINT_BITS} ({MXINT_NAME})",
    ]


SUPPORTED_FORMATS: list[str] = _supported_formats()

# Named in refusals of elements that cannot take FP32 scales.
_BLOCK_SCALED_ONLY = ", ".join(e.name for e in FLOAT_ELEMENTS.values() if not e.fp32_scales)


class UnsupportedFormatError(ValueError):
    """A quantizer-attribute object describes a format the runtime cannot run."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        supported = "; ".join(SUPPORTED_FORMATS)
        super().__init__(f"{problem}. Supported formats: {supported}")


@dataclass(frozen=True)
class ElementFormat:
    """How one element is stored: an integer range or a small float (ExMy)."""

    kind: Literal["int", "float"]
    bits: int  # total bits, sign included
    exponent_bits: int = 0
    mantissa_bits: int = 0
    unsigned: bool = False
    narrow_range: bool = False

    @property
    def max_value(self) -> float:
        """The largest representable magnitude (integers: the largest code)."""
        if self.kind == "int":
            return float(2 ** (self.bits - (0 if self.unsigned else 1)) - 1)
        return float_element(self.exponent_bits, self.mantissa_bits).max_value

    @property
    def min_value(self) -> float:
        """The most negative representable value (integers: the smallest code)."""
        if self.kind == "float":
            return -self.max_value
        if self.unsigned:
            return 0.0
        return -self.max_value if self.narrow_range else -self.max_value - 1.0

    @property
    def min_normal_exponent(self) -> int:
        """Floats: the exponent of the smallest normal value (below it the grid is uniform)."""
        return float_element(self.exponent_bits, self.mantissa_bits).min_normal_exponent

    @property
    def name(self) -> str:
        if self.kind == "int":
            return f"{'UINT' if self.unsigned else 'INT'}{self.bits}"
        return f"E{self.exponent_bits}M{self.mantissa_bits}"

    @property
    def fp32_scales(self) -> bool:
        """Whether the element runs with FP32 scales (integers and the FP8 formats)."""
        return self.kind == "int" or (
            float_element(self.exponent_bits, self.mantissa_bits).fp32_scales
        )

    def require_fp32_scales(self, context: str) -> None:
        """Refuse elements that need NVFP4 or MX block scales, saying where they were met."""
        if not self.fp32_scales:
            raise UnsupportedFormatError(
                f"num_bits [{self.exponent_bits}, {self.mantissa_bits}] {context} "
                f"({_BLOCK_SCALED_ONLY} elements need NVFP4 or MX block scales)"
            )


Scheme = Literal["tensor", "channel", "block", "nvfp4", "mx"]


@dataclass(frozen=True)
class QuantFormat:
    """One fake-quantization format, built from a flat quantizer-attribute object.

    ``scheme`` says where scales come from:

    * ``tensor``: one amax for the whole tensor;
    * ``channel``: one amax per index of the kept axes ``axis`` (the other axes are reduced), or
      per index of every axis but ``reduce_axes``;
    * ``block``: one amax per block of ``block_sizes`` (axis, size) pairs;
    * ``nvfp4``: E2M1 elements, FP8 E4M3 block scales under a per-tensor FP32 scale;
    * ``mx``: elements with power-of-two (E8M0) scales, one per block, always from the data.

    ``dynamic`` formats take their amax from each tensor at run time.
    """

    element: ElementFormat
    scheme: Scheme
    axis: tuple[int, ...] | None = None
    reduce_axes: tuple[int, ...] | None = None
    block_sizes: tuple[tuple[int, int], ...] = ()
    dynamic: bool = False
    dynamic_blocks: bool = False

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> QuantFormat:
        """The format of one flat quantizer-attribute object (raises UnsupportedFormatError)."""
        if not isinstance(cfg, Mapping):
            raise UnsupportedFormatError(
                f"a quantizer-attribute object must be a mapping, not {type(cfg).__name__}"
            )
        _refuse_unsupported_features(cfg)
        element = _element_from_num_bits(
            cfg.get("num_bits", 8), cfg.get("unsigned", False), cfg.get("narrow_range", False)
        )
        quantizer_type = cfg.get("type", "static")
        if quantizer_type not in ("static", "dynamic"):
            raise UnsupportedFormatError(f"type {quantizer_type!r} (expected static or dynamic)")
        dynamic = quantizer_type == "dynamic"
        axis = cfg.get("axis")
        block_sizes = cfg.get("block_sizes")
        if block_sizes is not None:
            if axis is not None:
                raise UnsupportedFormatError(
                    f"axis {axis!r} together with block_sizes {dict(block_sizes)!r} (axis must "
                    "be null when block_sizes is set)"
                )
            return _format_from_block_sizes(element, block_sizes, dynamic)
        element.require_fp32_scales("without block_sizes")
        if axis is None:
            return cls(element=element, scheme="tensor", dynamic=dynamic)
        return cls(element=element, scheme="channel", axis=_axes(axis, "axis"), dynamic=dynamic)

    # -- properties ------------------------------------------------------------------------------

    @property
    def needs_calibration(self) -> bool:
        """False for formats whose scales come from the data at run time.

        NVFP4 with dynamic blocks counts as dynamic: its block scales come from the data, and
        its per-tensor scale does too unless an amax is passed to :func:`fake_quant` (see
        :attr:`accepts_global_amax`).
        """
        return not (self.dynamic or self.dynamic_blocks)

    @property
    def accepts_global_amax(self) -> bool:
        """True for dynamic NVFP4: a calibrated per-tensor amax may be passed, as ModelOpt does.

        ModelOpt calibrates the per-tensor (second-level) amax of dynamic NVFP4 quantizers with
        ``max`` and keeps it fixed; without one, the per-tensor amax of each tensor is used.
        """
        return self.scheme == "nvfp4" and self.dynamic_blocks and not self.dynamic

    @property
    def block_size(self) -> int:
        """Block length along the last axis (NVFP4, MX and 1-D block formats)."""
        for axis, size in self.block_sizes:
            if axis == -1:
                return size
        raise AttributeError("this format has no block on the last axis")

    def describe(self) -> str:
        """A short human name, e.g. ``FP8 E4M3 per-tensor`` or ``INT4 per-block(128)``."""
        element = self.element
        if self.scheme == "nvfp4":
            kind = "dynamic" if self.dynamic_blocks else "static"
            return f"NVFP4 ({self.block_size}-block, {NVFP4_SCALE.name} scales, {kind})"
        if self.scheme == "mx":
            name = (
                MXINT_NAME
                if element.kind == "int"
                else float_element(element.exponent_bits, element.mantissa_bits).mx_name
            )
            return f"{name} ({self.block_size}-block, {MX_SCALE_NAME} scales)"
        if element.kind == "int":
            name = element.name + (" narrow" if element.narrow_range else "")
        else:
            name = f"FP8 {element.name}"
        if self.scheme == "tensor":
            layout = "per-tensor"
        elif self.scheme == "channel":
            if self.axis is not None:
                layout = f"per-channel(axis {_axes_text(self.axis)})"
            else:
                assert self.reduce_axes is not None
                layout = f"per-channel(amax over axis {_axes_text(self.reduce_axes)})"
        else:
            sizes = dict(self.block_sizes)
            if list(sizes) == [-1]:
                layout = f"per-block({sizes[-1]})"
            else:
                # rows x columns, for blocks on the last two axes
                shown = "x".join(str(sizes[a]) for a in sorted(sizes))
                layout = f"per-block({shown if len(sizes) == 2 else shown + 'x1'})"
        return f"{name} {layout}" + (", dynamic" if self.dynamic else "")

    # -- layout on a concrete tensor ---------------------------------------------------------------

    def kept_axes(self, ndim: int) -> tuple[int, ...]:
        """Channel formats: the non-negative axes that keep their own amax, for an ndim tensor."""
        if self.axis is not None:
            kept = [_normalise_axis(a, ndim, "axis") for a in self.axis]
        else:
            assert self.reduce_axes is not None
            reduced = {_normalise_axis(a, ndim, "block_sizes") for a in self.reduce_axes}
            kept = [a for a in range(ndim) if a not in reduced]
        return tuple(sorted(set(kept)))

    def block_layout(self, shape: Sequence[int]) -> tuple[int, int]:
        """Block formats: (rows per block on axis -2, columns per block on axis -1) for a shape.

        Block sizes may name the last axis and/or the one before it (in negative or
        non-negative form); a size of 1 means "no blocking" along that axis.
        """
        ndim = len(shape)
        rows, cols = 1, 1
        for axis, size in self.block_sizes:
            position = _normalise_axis(axis, ndim, "block_sizes")
            if position == ndim - 1:
                cols = size
            elif position == ndim - 2:
                rows = size
            else:
                raise UnsupportedFormatError(
                    f"block_sizes on axis {axis} of a {ndim}-D tensor (blocks are supported on "
                    "the last two axes only)"
                )
        return rows, cols

    def amax_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of the calibration statistic :func:`reduce_amax` returns for a tensor shape."""
        shape = tuple(int(s) for s in shape)
        if self.scheme == "tensor" or (self.scheme == "nvfp4" and self.dynamic_blocks):
            return ()
        if self.scheme == "channel":
            kept = self.kept_axes(len(shape))
            return tuple(s if i in kept else 1 for i, s in enumerate(shape))
        if len(shape) == 0:
            raise UnsupportedFormatError("block formats need a tensor with at least one axis")
        rows, cols = self.block_layout(shape)
        out = list(shape)
        out[-1] = math.ceil(shape[-1] / cols) if shape[-1] else 0
        if len(shape) >= 2:
            out[-2] = math.ceil(shape[-2] / rows) if shape[-2] else 0
        return tuple(out)


def _axes_text(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else ",".join(str(a) for a in axes)


def _normalise_axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise UnsupportedFormatError(f"{what} {axis} is out of range for a {ndim}-D tensor")
    return axis % ndim


def _axes(value: Any, what: str) -> tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise UnsupportedFormatError(f"{what} {value!r} (expected an integer or a list of them)")
    return tuple(values)


def _refuse_unsupported_features(cfg: Mapping[str, Any]) -> None:
    if cfg.get("fake_quant", True) is not True:
        raise UnsupportedFormatError(
            "fake_quant false (real quantization to packed storage is not supported; the "
            "runtime only fake-quantizes)"
        )
    if cfg.get("backend") is not None:
        raise UnsupportedFormatError(
            f"backend {cfg.get('backend')!r} (custom quantization backends are not supported; "
            "leave backend null)"
        )
    if cfg.get("bias") is not None:
        raise UnsupportedFormatError("bias (affine quantization with a zero point)")
    rotate = cfg.get("rotate", False)
    if rotate is True or (isinstance(rotate, Mapping) and rotate.get("enable", False)):
        raise UnsupportedFormatError("rotate (Hadamard rotation before quantization)")


def _element_from_num_bits(num_bits: Any, unsigned: Any, narrow_range: Any) -> ElementFormat:
    if isinstance(num_bits, bool):
        raise UnsupportedFormatError(f"num_bits {num_bits!r}")
    if isinstance(num_bits, int):
        if num_bits not in INT_BITS:
            raise UnsupportedFormatError(
                f"num_bits {num_bits} (integer formats have {INT_BITS[0]} to {INT_BITS[-1]} bits)"
            )
        return ElementFormat(
            kind="int", bits=num_bits, unsigned=bool(unsigned), narrow_range=bool(narrow_range)
        )
    if (
        isinstance(num_bits, (list, tuple))
        and len(num_bits) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in num_bits)
    ):
        exponent, mantissa = int(num_bits[0]), int(num_bits[1])
        if (exponent, mantissa) not in FLOAT_ELEMENTS:
            supported = ", ".join(e.name for e in FLOAT_ELEMENTS.values())
            raise UnsupportedFormatError(
                f"num_bits [{exponent}, {mantissa}] (E{exponent}M{mantissa} elements; supported "
                f"float elements are {supported})"
            )
        if unsigned:
            raise UnsupportedFormatError(
                f"unsigned true with num_bits [{exponent}, {mantissa}] (unsigned applies to "
                "integer formats only)"
            )
        if narrow_range:
            raise UnsupportedFormatError(
                f"narrow_range true with num_bits [{exponent}, {mantissa}] (narrow_range applies "
                "to integer formats only)"
            )
        return ElementFormat(
            kind="float",
            bits=1 + exponent + mantissa,
            exponent_bits=exponent,
            mantissa_bits=mantissa,
        )
    raise UnsupportedFormatError(
        f"num_bits {num_bits!r} (expected an integer 2-8 or an [E, M] pair)"
    )


def _scale_bits(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise UnsupportedFormatError(
        f"block_sizes.scale_bits {value!r} (expected {list(NVFP4_SCALE_BITS)} or "
        f"{list(MX_SCALE_BITS)})"
    )


def _format_from_block_sizes(
    element: ElementFormat, block_sizes: Mapping[Any, Any], dynamic: bool
) -> QuantFormat:
    if not isinstance(block_sizes, Mapping):
        raise UnsupportedFormatError(f"block_sizes {block_sizes!r} (expected a mapping)")
    shown = dict(block_sizes)
    if block_sizes.get("scale_block_sizes") is not None:
        raise UnsupportedFormatError(
            f"block_sizes.scale_block_sizes {block_sizes['scale_block_sizes']!r} (double "
            "quantization of block scales)"
        )
    if block_sizes.get("four_over_six"):
        raise UnsupportedFormatError("block_sizes.four_over_six (NVFP4 4/6 scale selection)")
    block_type = block_sizes.get("type", "static")
    if block_type not in ("static", "dynamic"):
        raise UnsupportedFormatError(
            f"block_sizes.type {block_type!r} (expected static or dynamic)"
        )
    scale_bits = _scale_bits(block_sizes.get("scale_bits"))
    sizes: dict[int, int | None] = {}
    for key, value in block_sizes.items():
        if key in ("type", "scale_bits", "scale_block_sizes", "four_over_six"):
            continue
        try:
            axis = int(key)
        except (TypeError, ValueError):
            raise UnsupportedFormatError(f"block_sizes key {key!r} in {shown!r}") from None
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise UnsupportedFormatError(
                f"block_sizes[{key!r}] = {value!r} (block sizes are positive integers or null)"
            )
        sizes[axis] = value
    if not sizes:
        raise UnsupportedFormatError(f"block_sizes {shown!r} names no axis")

    if all(v is None for v in sizes.values()):
        # Every named axis is reduced whole: a per-channel (per-token) amax over the others.
        if scale_bits is not None:
            raise UnsupportedFormatError(
                f"block_sizes {shown!r}: scale_bits with whole-axis (null) blocks"
            )
        element.require_fp32_scales("with whole-axis blocks")
        return QuantFormat(
            element=element,
            scheme="channel",
            reduce_axes=tuple(sorted(sizes)),
            dynamic=dynamic or block_type == "dynamic",
        )
    if any(v is None for v in sizes.values()):
        raise UnsupportedFormatError(
            f"block_sizes {shown!r} mixes null (whole-axis) and sized blocks"
        )
    pairs = tuple(sorted((axis, size) for axis, size in sizes.items() if size is not None))

    if scale_bits == NVFP4_SCALE_BITS:
        if not (
            element.kind == "float"
            and (element.exponent_bits, element.mantissa_bits) == NVFP4_ELEMENT.key
        ):
            raise UnsupportedFormatError(
                f"{NVFP4_SCALE.name} block scales (scale_bits {list(NVFP4_SCALE_BITS)}) with "
                f"{element.name} elements (only {NVFP4_ELEMENT.name} elements, i.e. NVFP4, take "
                "FP8 block scales)"
            )
        return _last_axis_blocks(
            element, "nvfp4", pairs, shown, dynamic=dynamic, dynamic_blocks=block_type == "dynamic"
        )
    if scale_bits == MX_SCALE_BITS:
        if block_type != "dynamic":
            raise UnsupportedFormatError(
                f"block_sizes {shown!r}: MX formats (scale_bits {list(MX_SCALE_BITS)}) take their "
                "scales from the data; use type dynamic"
            )
        if element.kind == "int" and (
            element.bits != MXINT_BITS or element.unsigned or element.narrow_range
        ):
            raise UnsupportedFormatError(
                f"{element.name} elements with {MX_SCALE_NAME} scales ({MXINT_NAME} is signed "
                f"{MXINT_BITS}-bit)"
            )
        return _last_axis_blocks(element, "mx", pairs, shown, dynamic=dynamic, dynamic_blocks=True)
    if scale_bits is not None:
        raise UnsupportedFormatError(
            f"block_sizes.scale_bits {list(scale_bits)} (supported: {list(NVFP4_SCALE_BITS)} for "
            f"NVFP4, {list(MX_SCALE_BITS)} for MX formats)"
        )
    if block_type == "dynamic":
        raise UnsupportedFormatError(
            f"block_sizes {shown!r}: dynamic blocks without scale_bits (dynamic block scales "
            f"are {NVFP4_SCALE.name} for NVFP4 or {MX_SCALE_NAME} for MX)"
        )
    element.require_fp32_scales("with FP32 block scales")
    if len(pairs) > 2:
        raise UnsupportedFormatError(
            f"block_sizes {shown!r} (blocks on at most two axes, the last two)"
        )
    return QuantFormat(element=element, scheme="block", block_sizes=pairs, dynamic=dynamic)


def _last_axis_blocks(
    element: ElementFormat,
    scheme: Literal["nvfp4", "mx"],
    pairs: tuple[tuple[int, int], ...],
    shown: Any,
    *,
    dynamic: bool,
    dynamic_blocks: bool,
) -> QuantFormat:
    """NVFP4 and MX formats: one block size, along the last axis."""
    if len(pairs) != 1 or pairs[0][0] != -1:
        name = "NVFP4" if scheme == "nvfp4" else "MX"
        raise UnsupportedFormatError(
            f"block_sizes {shown!r}: {name} blocks run along the last axis only (key -1)"
        )
    return QuantFormat(
        element=element,
        scheme=scheme,
        block_sizes=((-1, pairs[0][1]),),
        dynamic=dynamic,
        dynamic_blocks=dynamic_blocks,
    )
