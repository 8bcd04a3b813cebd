"""Fake-quantization kernels: number formats, a pure-PyTorch reference and Triton kernels.

>>> fmt = QuantFormat.from_cfg(attributes)          # doctest: +SKIP
>>> amax = reduce_amax(weight, fmt)                 # doctest: +SKIP
>>> fake_quant(weight, fmt, amax)                   # doctest: +SKIP

The reference (``backend="reference"``) defines the numerics; the PyTorch path
(``backend="torch"``, the CPU default) and the Triton kernels (``backend="triton"``, on the GPU
and under ``TRITON_INTERPRET=1``) reproduce them bit for bit.
See ``docs/runtime-numerics.md``.
"""

from __future__ import annotations

from .api import BACKENDS, fake_quant, fake_quant_, reduce_amax
from .formats import SUPPORTED_FORMATS, ElementFormat, QuantFormat, UnsupportedFormatError

__all__ = [
    "BACKENDS",
    "SUPPORTED_FORMATS",
    "ElementFormat",
    "QuantFormat",
    "UnsupportedFormatError",
    "fake_quant",
    "fake_quant_",
    "reduce_amax",
]
