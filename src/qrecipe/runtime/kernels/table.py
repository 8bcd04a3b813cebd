"""The format table: every number the runtime's formats are built from, written down once.

Element formats (integers and small floats), the block-scale formats of NVFP4 and MX, and the
zero-amax bound. :mod:`.formats` reads it to accept or refuse attribute objects and to name
formats (the names in :class:`~qrecipe.runtime.QuantReport`); :mod:`.reference` and
:mod:`.triton_qdq` read it for their constants; ``SUPPORTED_FORMATS`` is written from it.
Tests check it against the flat schema (every ``num_bits`` the schema allows is either here or
refused with a reason), against the numerics table of ``docs/runtime-numerics.md``, and the
named formats of :mod:`.catalog` against the numerics snippets of the recipe library.

Standard library only, so that it can be read without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "E2M1",
    "E2M1_MAX",
    "E2M3",
    "E3M2",
    "E4M3",
    "E4M3_MAX",
    "E4M3_MIN_SUBNORMAL",
    "E5M2",
    "E8M0_MAX_EXPONENT",
    "E8M0_MIN_EXPONENT",
    "FLOAT_ELEMENTS",
    "INT_BITS",
    "MXINT_BITS",
    "MXINT_NAME",
    "MX_SCALE_BITS",
    "MX_SCALE_NAME",
    "NVFP4_ELEMENT",
    "NVFP4_GLOBAL_DIVISOR",
    "NVFP4_SCALE",
    "NVFP4_SCALE_BITS",
    "ZERO_AMAX",
    "FloatElement",
    "float_element",
]


@dataclass(frozen=True)
class FloatElement:
    """A small floating-point element format ExMy, with saturating (never infinite) values."""

    exponent_bits: int
    mantissa_bits: int
    max_value: float
    """The largest finite magnitude."""
    min_normal_exponent: int
    """Exponent of the smallest normal value; below it the grid is uniform (subnormals)."""
    fp32_scales: bool
    """Runs with FP32 scales (per tensor, channel or block); the others need block scales."""
    mx_name: str
    """The format's name as the element of an MX format."""

    @property
    def name(self) -> str:
        """``E4M3``, ``E2M1``, ..."""
        return f"E{self.exponent_bits}M{self.mantissa_bits}"

    @property
    def key(self) -> tuple[int, int]:
        """``num_bits`` of the flat form, as a tuple: ``(4, 3)``."""
        return (self.exponent_bits, self.mantissa_bits)

    @property
    def min_subnormal(self) -> float:
        """The smallest positive value."""
        return 2.0 ** (self.min_normal_exponent - self.mantissa_bits)


# E4M3 is the "FN" variant (no infinities, 448 is the top); E5M2 keeps IEEE's top exponent for
# inf/NaN. Ordered FP8 first: messages list them in this order.
E4M3 = FloatElement(4, 3, 448.0, -6, fp32_scales=True, mx_name="MXFP8 E4M3")
E5M2 = FloatElement(5, 2, 57344.0, -14, fp32_scales=True, mx_name="MXFP8 E5M2")
E2M1 = FloatElement(2, 1, 6.0, 0, fp32_scales=False, mx_name="MXFP4")
E3M2 = FloatElement(3, 2, 28.0, -2, fp32_scales=False, mx_name="MXFP6 E3M2")
E2M3 = FloatElement(2, 3, 7.5, 0, fp32_scales=False, mx_name="MXFP6 E2M3")

# The values the kernels use by name.
E4M3_MAX = E4M3.max_value
E4M3_MIN_SUBNORMAL = E4M3.min_subnormal  # NVFP4 block scales never go below it
E2M1_MAX = E2M1.max_value

FLOAT_ELEMENTS: dict[tuple[int, int], FloatElement] = {
    element.key: element for element in (E4M3, E5M2, E2M1, E3M2, E2M3)
}
"""Every float element the kernels run, by ``num_bits`` ``(E, M)``."""

INT_BITS = range(2, 9)
"""Integer element widths (sign included unless unsigned)."""

ZERO_AMAX = 2.0**-24
"""Amax values at or below this count as zero. The reference implementation uses the same bound
for integer formats: anything smaller cannot come from fp16/bf16 data that is not zero."""

# NVFP4: E2M1 elements, one E4M3 scale per block under a per-tensor FP32 scale that maps the
# tensor's amax onto the product of the two formats' largest values.
NVFP4_ELEMENT = E2M1
NVFP4_SCALE = E4M3
NVFP4_SCALE_BITS = NVFP4_SCALE.key
NVFP4_GLOBAL_DIVISOR = NVFP4_ELEMENT.max_value * NVFP4_SCALE.max_value  # 2688, exact

# MX: power-of-two (E8M0) scales, one per block; the elements are every float element above
# and signed 8-bit integers (MXINT8, symmetric -127..127).
MX_SCALE_BITS = (8, 0)
MX_SCALE_NAME = "E{}M{}".format(*MX_SCALE_BITS)
MXINT_BITS = 8
MXINT_NAME = "MXINT8"
# The exponents an E8M0 byte holds (code 255 is NaN).
E8M0_MIN_EXPONENT = -127
E8M0_MAX_EXPONENT = 127


def float_element(exponent_bits: int, mantissa_bits: int) -> FloatElement:
    """The table entry of ExMy (KeyError when the kernels do not run it)."""
    return FLOAT_ELEMENTS[(exponent_bits, mantissa_bits)]
