"""Apply flat recipes to PyTorch models: quantizer placement, calibration, fake quantization.

This package needs the ``[runtime]`` extra (torch, triton, tqdm); ``import qrecipe`` alone never
imports torch.

>>> from qrecipe.runtime import apply, remove
>>> report = apply(model, "recipe.flat.json", forward_loop=calibrate)  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
>>> remove(model)  # doctest: +SKIP

Layout, by concern:

* :mod:`.apply`: ``apply``/``remove``/``quantized``, the pipeline load -> plan -> place ->
  calibrate -> report; :mod:`.checks` (what is refused, before the model changes),
  :mod:`.matching` (quant_cfg entries over the planned quantizers), :mod:`.report`.
* :mod:`.placement`: one module per kind of quantized module (layers, attention, fused
  experts) behind one interface, and the planner that runs them over a model.
* :mod:`.calibration`: one module per algorithm (``max``, ``mse``, ``smoothquant``, AWQ, GPTQ,
  ``nvfp4_act_headroom``), layer-by-layer calibration of any of them, and the shared collection
  and reduction of activation statistics.
* :mod:`.quantizer`: the quantizer modules; :mod:`.kernels`: the numerics (the format table,
  formats, the PyTorch reference and the Triton kernels); :mod:`.flatbuild`: flat recipes
  built in Python.

* :mod:`.export`: checkpoints serving engines load (``export(model, directory, recipe)``),
  one module per format; :mod:`.load`: ``load(directory)``, a checkpoint back as a model
  computing from its packed weights (:mod:`.packed`), a pipeline beside :mod:`.apply` that
  plans and places the same way and restores amax instead of calibrating; :mod:`.quantize`: a
  Hugging Face model directory to a checkpoint (``qrecipe quantize``).
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

from .apply import apply, quantized, remove
from .calibration import SUPPORTED_ALGORITHMS, CheckpointMismatchError
from .errors import UnsupportedRecipeError
from .kernels import BACKENDS
from .load import CheckpointError, load
from .matching import class_names
from .placement import iter_quantizers
from .quantizer import SequentialQuantizer, TensorQuantizer
from .report import AmaxStats, EntryRecord, QuantizerRecord, QuantReport

__all__ = [
    "BACKENDS",
    "SUPPORTED_ALGORITHMS",
    "AmaxStats",
    "CheckpointError",
    "CheckpointMismatchError",
    "EntryRecord",
    "QuantReport",
    "QuantizerRecord",
    "SequentialQuantizer",
    "TensorQuantizer",
    "UnsupportedRecipeError",
    "apply",
    "class_names",
    "iter_quantizers",
    "load",
    "quantized",
    "remove",
]
