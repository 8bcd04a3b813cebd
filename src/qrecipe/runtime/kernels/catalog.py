"""Named example formats: the attribute objects of common quantization recipes.

The names follow the numerics snippets of the recipe library (``configs/numerics/*``) where one
exists. Each value is a partial quantizer-attribute object; :meth:`QuantFormat.from_cfg` fills
the rest with the flat-form defaults.

>>> format_named("nvfp4").describe()
'NVFP4 (16-block, E4M3 scales, dynamic)'
"""

from __future__ import annotations

from typing import Any

from .formats import QuantFormat

__all__ = ["FORMATS", "format_named"]

FORMATS: dict[str, dict[str, Any]] = {
    # ModelOpt numerics snippets
    "fp8": {"num_bits": [4, 3]},
    "int8": {"num_bits": 8},
    "int8_per_channel": {"num_bits": 8, "axis": 0},
    "int4_per_block": {"num_bits": 4, "block_sizes": {"-1": 128, "type": "static"}},
    "fp8_2d_block": {"num_bits": [4, 3], "block_sizes": {"-1": 128, "-2": 128}},
    # further shapes of the same formats
    "fp8_e4m3": {"num_bits": [4, 3]},
    "fp8_e4m3_axis0": {"num_bits": [4, 3], "axis": 0},
    "fp8_e4m3_axis_last": {"num_bits": [4, 3], "axis": -1},
    "fp8_e5m2": {"num_bits": [5, 2]},
    "fp8_e5m2_axis0": {"num_bits": [5, 2], "axis": 0},
    "fp8_e4m3_block_2d": {"num_bits": [4, 3], "block_sizes": {"-1": 32, "-2": 16}},
    "fp8_e5m2_block_2d": {"num_bits": [5, 2], "block_sizes": {"-1": 16, "-2": 8}},
    "fp8_e4m3_per_token": {"num_bits": [4, 3], "type": "dynamic", "block_sizes": {"-1": None}},
    "int8_axis0": {"num_bits": 8, "axis": 0},
    "int8_narrow_axis_list": {"num_bits": 8, "narrow_range": True, "axis": [0]},
    "uint8": {"num_bits": 8, "unsigned": True},
    "int4_block": {"num_bits": 4, "block_sizes": {"-1": 16, "type": "static"}},
    "int4_block_odd": {"num_bits": 4, "block_sizes": {"-1": 7, "type": "static"}},
    "int2_narrow": {"num_bits": 2, "narrow_range": True},
    "uint3_axis_last": {"num_bits": 3, "unsigned": True, "axis": -1},
    "int8_rows_block": {"num_bits": 8, "block_sizes": {"-2": 4}},
    "int8_dynamic": {"num_bits": 8, "type": "dynamic"},
    "nvfp4": {
        "num_bits": [2, 1],
        "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]},
    },
    "nvfp4_static": {
        "num_bits": [2, 1],
        "block_sizes": {"-1": 16, "type": "static", "scale_bits": [4, 3]},
    },
    "nvfp4_bs32": {
        "num_bits": [2, 1],
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [4, 3]},
    },
    "mxfp4": {
        "num_bits": [2, 1],
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]},
    },
    "mxfp6_e3m2": {
        "num_bits": [3, 2],
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]},
    },
    "mxfp6_e2m3": {
        "num_bits": [2, 3],
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]},
    },
    "mxfp8": {
        "num_bits": [4, 3],
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]},
    },
    "mxfp8_e5m2": {
        "num_bits": [5, 2],
        "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]},
    },
    "mxint8": {"num_bits": 8, "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}},
}


def format_named(name: str) -> QuantFormat:
    """The format of a catalogue entry (KeyError lists the names)."""
    try:
        cfg = FORMATS[name]
    except KeyError:
        raise KeyError(f"no format named {name!r}; known: {', '.join(FORMATS)}") from None
    return QuantFormat.from_cfg(cfg)
