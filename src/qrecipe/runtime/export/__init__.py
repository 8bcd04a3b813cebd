"""Quantized models written as checkpoints that serving engines load, one module per format.

* :mod:`.modelopt`: the Hugging Face layout of ModelOpt's exporter (``quant_method:
  modelopt``), read by vLLM, SGLang and TensorRT-LLM;
* :mod:`.compressed_tensors`: the layout of the ``compressed-tensors`` package
  (``quant_method: compressed-tensors``), read by vLLM and ``transformers``.

:func:`export` runs the pipeline (:mod:`.pipeline`): check, fuse, pack, write. What a layer
becomes is decided from its quantizers' attributes alone (:mod:`.schemes`, :mod:`.survey`), so
:func:`check_exportable` refuses a recipe before calibration. A new format is a module here
whose :class:`~.pipeline.ExportFormat` joins ``EXPORT_FORMATS``.
"""

from __future__ import annotations

from .pipeline import EXPORT_FORMATS, ExportFormat, ExportResult, check_exportable, export
from .schemes import SCHEMES, Scheme

__all__ = [
    "EXPORT_FORMATS",
    "SCHEMES",
    "ExportFormat",
    "ExportResult",
    "Scheme",
    "check_exportable",
    "export",
]
