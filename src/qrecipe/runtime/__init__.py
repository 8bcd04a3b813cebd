"""Apply flat recipes to PyTorch models: quantizer placement, calibration, fake quantization.

This package needs the ``[runtime]`` extra (torch, triton, tqdm); ``import qrecipe`` alone never
imports torch.

>>> from qrecipe.runtime import apply, remove
>>> report = apply(model, "recipe.flat.json", forward_loop=calibrate)  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
>>> remove(model)  # doctest: +SKIP
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
    import tqdm  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"qrecipe.runtime needs the runtime extra ({exc.name} is missing); install it with "
        "pip install 'qrecipe[runtime]'"
    ) from exc

from .apply import (
    BACKENDS,
    SUPPORTED_ALGORITHMS,
    UnsupportedRecipeError,
    apply,
    quantized,
    remove,
)
from .placement import class_names, iter_quantizers
from .quantizer import SequentialQuantizer, TensorQuantizer
from .report import AmaxStats, EntryRecord, QuantizerRecord, QuantReport

__all__ = [
    "BACKENDS",
    "SUPPORTED_ALGORITHMS",
    "AmaxStats",
    "EntryRecord",
    "QuantReport",
    "QuantizerRecord",
    "SequentialQuantizer",
    "TensorQuantizer",
    "UnsupportedRecipeError",
    "apply",
    "class_names",
    "iter_quantizers",
    "quantized",
    "remove",
]
