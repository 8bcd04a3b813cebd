"""Fake-quantization kernels: number formats, a pure-PyTorch reference and Triton kernels.

>>> fmt = QuantFormat.from_cfg(attributes)          # doctest: +SKIP
>>> amax = reduce_amax(weight, fmt)                 # doctest: +SKIP
>>> fake_quant(weight, fmt, amax)                   # doctest: +SKIP

The reference (``backend="torch"``) defines the numerics; the Triton kernels
(``backend="triton"``) reproduce them bit for bit, on the GPU and under ``TRITON_INTERPRET=1``.
See ``docs/runtime-numerics.md``.
"""

from __future__ import annotations

from .api import BACKENDS, fake_quant, reduce_amax
from .formats import SUPPORTED_FORMATS, ElementFormat, QuantFormat, UnsupportedFormatError

__all__ = [
    "BACKENDS",
    "SUPPORTED_FORMATS",
    "ElementFormat",
    "QuantFormat",
    "UnsupportedFormatError",
    "fake_quant",
    "reduce_amax",
]
