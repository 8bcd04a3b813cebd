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

__all__ = [
    "SUPPORTED_FORMATS",
    "ElementFormat",
    "QuantFormat",
    "UnsupportedFormatError",
]

# Amax values at or below this count as zero (the reference implementation uses the same bound
# for integer formats: anything smaller cannot come from fp16/bf16 data that is not zero).
ZERO_AMAX = 2.0**-24

# NVFP4 two-level scaling: the per-block scale is stored in FP8 E4M3, the global scale maps the
# tensor's amax onto E2M1_MAX * E4M3_MAX.
E4M3_MAX = 448.0
E2M1_MAX = 6.0
# The smallest positive E4M3 value (a subnormal): NVFP4 block scales never go below it.
E4M3_MIN_SUBNORMAL = 2.0**-9

SUPPORTED_FORMATS: list[str] = [
    "INT2..INT8 (num_bits 2-8; unsigned and narrow_range allowed): per tensor (axis null), per "
    "channel (axis int or list), per block (block_sizes on the last one or two axes, type static)",
    "FP8 E4M3 ([4, 3]) and E5M2 ([5, 2]): per tensor, per channel, per block (type static, "
    "1-D or 2-D blocks on the last two axes)",
    "dynamic per-tensor / per-channel / per-token INT and FP8 (type dynamic, or block_sizes whose "
    "axis entries are all null)",
    "NVFP4: num_bits [2, 1] with block_sizes {-1: N, type: dynamic|static, scale_bits: [4, 3]}",
    "MX: block_sizes {-1: N, type: dynamic, scale_bits: [8, 0]} with num_bits [2, 1] (MXFP4), "
    "[3, 2] or [2, 3] (MXFP6), [4, 3] or [5, 2] (MXFP8), 8 (MXINT8)",
]


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
        return _FLOAT_ELEMENTS[(self.exponent_bits, self.mantissa_bits)][0]

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
        return _FLOAT_ELEMENTS[(self.exponent_bits, self.mantissa_bits)][1]

    @property
    def name(self) -> str:
        if self.kind == "int":
            return f"{'UINT' if self.unsigned else 'INT'}{self.bits}"
        return f"E{self.exponent_bits}M{self.mantissa_bits}"


# (E, M) -> (largest finite magnitude, exponent of the smallest normal). E4M3 is the "FN"
# variant (no infinities, 448 is the top); E5M2 keeps IEEE's top exponent for inf/NaN.
_FLOAT_ELEMENTS: dict[tuple[int, int], tuple[float, int]] = {
    (4, 3): (448.0, -6),
    (5, 2): (57344.0, -14),
    (2, 1): (6.0, 0),
    (3, 2): (28.0, -2),
    (2, 3): (7.5, 0),
}

_MX_NAMES = {
    ("float", 2, 1): "MXFP4",
    ("float", 3, 2): "MXFP6 E3M2",
    ("float", 2, 3): "MXFP6 E2M3",
    ("float", 4, 3): "MXFP8 E4M3",
    ("float", 5, 2): "MXFP8 E5M2",
    ("int", 0, 0): "MXINT8",
}

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
        if element.kind == "float" and (element.exponent_bits, element.mantissa_bits) not in (
            (4, 3),
            (5, 2),
        ):
            raise UnsupportedFormatError(
                f"num_bits [{element.exponent_bits}, {element.mantissa_bits}] without "
                "block_sizes (E2M1 and the FP6 formats need block scales: NVFP4 or MX)"
            )
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
            return f"NVFP4 ({self.block_size}-block, E4M3 scales, {kind})"
        if self.scheme == "mx":
            key = (
                ("int", 0, 0)
                if element.kind == "int"
                else ("float", element.exponent_bits, element.mantissa_bits)
            )
            return f"{_MX_NAMES[key]} ({self.block_size}-block, E8M0 scales)"
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
        if not 2 <= num_bits <= 8:
            raise UnsupportedFormatError(f"num_bits {num_bits} (integer formats have 2 to 8 bits)")
        return ElementFormat(
            kind="int", bits=num_bits, unsigned=bool(unsigned), narrow_range=bool(narrow_range)
        )
    if (
        isinstance(num_bits, (list, tuple))
        and len(num_bits) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in num_bits)
    ):
        exponent, mantissa = int(num_bits[0]), int(num_bits[1])
        if (exponent, mantissa) not in _FLOAT_ELEMENTS:
            raise UnsupportedFormatError(
                f"num_bits [{exponent}, {mantissa}] (E{exponent}M{mantissa} elements; supported "
                "float elements are E4M3, E5M2, E2M1, E3M2, E2M3)"
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
    raise UnsupportedFormatError(f"block_sizes.scale_bits {value!r} (expected [4, 3] or [8, 0])")


def _format_from_block_sizes(
    element: ElementFormat, block_sizes: Mapping[Any, Any], dynamic: bool
) -> QuantFormat:
    if not isinstance(block_sizes, Mapping):
        raise UnsupportedFormatError(f"block_sizes {block_sizes!r} (expected a mapping)")
    shown = dict(block_sizes)
    for key in ("scale_block_sizes",):
        if block_sizes.get(key) is not None:
            raise UnsupportedFormatError(
                f"block_sizes.{key} {block_sizes[key]!r} (double quantization of block scales)"
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
        if element.kind == "float" and (element.exponent_bits, element.mantissa_bits) not in (
            (4, 3),
            (5, 2),
        ):
            raise UnsupportedFormatError(
                f"num_bits [{element.exponent_bits}, {element.mantissa_bits}] with whole-axis "
                "blocks (E2M1 and FP6 elements need NVFP4 or MX block scales)"
            )
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
    pairs = tuple(sorted((axis, int(size)) for axis, size in sizes.items()))  # type: ignore[arg-type]

    if scale_bits == (4, 3):
        if not (
            element.kind == "float" and (element.exponent_bits, element.mantissa_bits) == (2, 1)
        ):
            raise UnsupportedFormatError(
                f"E4M3 block scales (scale_bits [4, 3]) with {element.name} elements (only "
                "E2M1 elements, i.e. NVFP4, take FP8 block scales)"
            )
        _require_last_axis_only(pairs, shown, "NVFP4")
        return QuantFormat(
            element=element,
            scheme="nvfp4",
            block_sizes=((-1, pairs[0][1]),),
            dynamic=dynamic,
            dynamic_blocks=block_type == "dynamic",
        )
    if scale_bits == (8, 0):
        if block_type != "dynamic":
            raise UnsupportedFormatError(
                f"block_sizes {shown!r}: MX formats (scale_bits [8, 0]) take their scales from "
                "the data; use type dynamic"
            )
        if element.kind == "int" and (
            element.bits != 8 or element.unsigned or element.narrow_range
        ):
            raise UnsupportedFormatError(
                f"{element.name} elements with E8M0 scales (MXINT8 is signed 8-bit)"
            )
        _require_last_axis_only(pairs, shown, "MX")
        return QuantFormat(
            element=element,
            scheme="mx",
            block_sizes=((-1, pairs[0][1]),),
            dynamic=dynamic,
            dynamic_blocks=True,
        )
    if scale_bits is not None:
        raise UnsupportedFormatError(
            f"block_sizes.scale_bits {list(scale_bits)} (supported: [4, 3] for NVFP4, [8, 0] "
            "for MX formats)"
        )
    if block_type == "dynamic":
        raise UnsupportedFormatError(
            f"block_sizes {shown!r}: dynamic blocks without scale_bits (dynamic block scales "
            "are E4M3 for NVFP4 or E8M0 for MX)"
        )
    if element.kind == "float" and (element.exponent_bits, element.mantissa_bits) not in (
        (4, 3),
        (5, 2),
    ):
        raise UnsupportedFormatError(
            f"num_bits [{element.exponent_bits}, {element.mantissa_bits}] with FP32 block "
            "scales (E2M1 and FP6 elements need NVFP4 or MX block scales)"
        )
    if len(pairs) > 2:
        raise UnsupportedFormatError(
            f"block_sizes {shown!r} (blocks on at most two axes, the last two)"
        )
    return QuantFormat(element=element, scheme="block", block_sizes=pairs, dynamic=dynamic)


def _require_last_axis_only(pairs: tuple[tuple[int, int], ...], shown: Any, name: str) -> None:
    if len(pairs) != 1 or pairs[0][0] != -1:
        raise UnsupportedFormatError(
            f"block_sizes {shown!r}: {name} blocks run along the last axis only (key -1)"
        )
