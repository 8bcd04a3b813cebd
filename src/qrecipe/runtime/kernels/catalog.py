"""Named formats: the attribute objects of common quantization recipes.

The first group is the numerics snippets of the recipe library (``configs/numerics/<name>``),
with the same names and values (a test resolves every snippet and compares); the second group
adds further shapes of the same formats, which the kernel tests run. Each value is a partial
quantizer-attribute object; :meth:`QuantFormat.from_cfg` fills the rest with the flat-form
defaults.

>>> format_named("nvfp4").describe()
'NVFP4 (16-block, E4M3 scales, dynamic)'
"""

from __future__ import annotations

import copy
from typing import Any

from .formats import QuantFormat
from .table import (
    E2M1,
    E2M3,
    E3M2,
    E4M3,
    E5M2,
    MX_SCALE_BITS,
    MXINT_BITS,
    NVFP4_ELEMENT,
    NVFP4_SCALE_BITS,
    FloatElement,
)

__all__ = ["FORMATS", "attributes_named", "format_named"]


def _fp8(element: FloatElement = E4M3, **layout: Any) -> dict[str, Any]:
    return {"num_bits": list(element.key), **layout}


def _nvfp4(block: int = 16, block_type: str = "dynamic") -> dict[str, Any]:
    return {
        "num_bits": list(NVFP4_ELEMENT.key),
        "block_sizes": {"-1": block, "type": block_type, "scale_bits": list(NVFP4_SCALE_BITS)},
    }


def _mx(element: FloatElement | int) -> dict[str, Any]:
    return {
        "num_bits": element if isinstance(element, int) else list(element.key),
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": list(MX_SCALE_BITS)},
    }


FORMATS: dict[str, dict[str, Any]] = {
    # The numerics snippets of the recipe library.
    "fp8": _fp8(axis=None),
    "fp8_per_channel": _fp8(axis=0),
    "int8": {"num_bits": 8, "axis": None},
    "int8_per_channel": {"num_bits": 8, "axis": 0},
    "int4_per_block": {"num_bits": 4, "block_sizes": {"-1": 128, "type": "static"}},
    "nvfp4": _nvfp4(),
    "nvfp4_static": _nvfp4(block_type="static"),
    "nvfp4_bs32": _nvfp4(block=32),
    "mxfp4": _mx(E2M1),
    "mxfp6": _mx(E3M2),
    "mxfp8": _mx(E4M3),
    "mxint8": _mx(MXINT_BITS),
    # Further shapes of the same formats.
    "fp8_2d_block": _fp8(block_sizes={"-1": 128, "-2": 128}),
    "fp8_e4m3": _fp8(),
    "fp8_e4m3_axis0": _fp8(axis=0),
    "fp8_e4m3_axis_last": _fp8(axis=-1),
    "fp8_e5m2": _fp8(E5M2),
    "fp8_e5m2_axis0": _fp8(E5M2, axis=0),
    "fp8_e4m3_block_2d": _fp8(block_sizes={"-1": 32, "-2": 16}),
    "fp8_e5m2_block_2d": _fp8(E5M2, block_sizes={"-1": 16, "-2": 8}),
    "fp8_e4m3_per_token": _fp8(type="dynamic", block_sizes={"-1": None}),
    "int8_axis0": {"num_bits": 8, "axis": 0},
    "int8_narrow_axis_list": {"num_bits": 8, "narrow_range": True, "axis": [0]},
    "uint8": {"num_bits": 8, "unsigned": True},
    "int4_block": {"num_bits": 4, "block_sizes": {"-1": 16, "type": "static"}},
    "int4_block_odd": {"num_bits": 4, "block_sizes": {"-1": 7, "type": "static"}},
    "int2_narrow": {"num_bits": 2, "narrow_range": True},
    "uint3_axis_last": {"num_bits": 3, "unsigned": True, "axis": -1},
    "int8_rows_block": {"num_bits": 8, "block_sizes": {"-2": 4}},
    "int8_dynamic": {"num_bits": 8, "type": "dynamic"},
    "mxfp6_e3m2": _mx(E3M2),
    "mxfp6_e2m3": _mx(E2M3),
    "mxfp8_e5m2": _mx(E5M2),
}


def attributes_named(name: str) -> dict[str, Any]:
    """A copy of the (partial) attribute object of a catalogue entry (KeyError lists the names)."""
    try:
        return copy.deepcopy(FORMATS[name])
    except KeyError:
        raise KeyError(f"no format named {name!r}; known: {', '.join(FORMATS)}") from None


def format_named(name: str) -> QuantFormat:
    """The format of a catalogue entry (KeyError lists the names)."""
    return QuantFormat.from_cfg(attributes_named(name))
