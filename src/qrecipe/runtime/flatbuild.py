"""Build flat recipes in Python (for experiments, tests and adaptations of built-in recipes).

The result is a complete flat document, fingerprint included, that :func:`qrecipe.load_flat`
accepts. Authoring YAML and resolving it with ``qrecipe resolve`` remains the usual route;
this is for the cases where a recipe is assembled in code.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ..language import fingerprint
from ..schema import default_description, schema_id
from .attributes import default_attributes
from .kernels.catalog import attributes_named

FLAT_SCHEMA_URI = schema_id("flat")

# The numerics snippets of the same names (configs/numerics/*), from the format catalogue.
FP8 = attributes_named("fp8")
"""Per-tensor FP8 E4M3 (static: calibrated amax)."""
NVFP4 = attributes_named("nvfp4")
"""NVFP4: E2M1 values in blocks of 16 with dynamic FP8 E4M3 block scales."""
INT8_PER_CHANNEL = attributes_named("int8_per_channel")
"""8-bit integer weights, one scale per output channel."""


def attributes(**values: Any) -> dict[str, Any]:
    """A complete quantizer-attribute object: the defaults updated by ``values``."""
    return default_attributes(**copy.deepcopy(values))


def entry(
    quantizer_name: str,
    cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    *,
    enable: bool = True,
    parent_class: str | None = None,
) -> dict[str, Any]:
    """One quant_cfg entry; ``cfg`` may be partial (the other attributes get defaults)."""
    if isinstance(cfg, list):
        full: Any = [attributes(**c) for c in cfg]
    elif cfg is not None:
        full = attributes(**cfg)
    else:
        full = None
    return {
        "quantizer_name": quantizer_name,
        "parent_class": parent_class,
        "enable": enable,
        "cfg": full,
    }


def disable(quantizer_name: str, *, parent_class: str | None = None) -> dict[str, Any]:
    """An entry that only switches matching quantizers off."""
    return entry(quantizer_name, None, enable=False, parent_class=parent_class)


def make_flat(
    quant_cfg: Iterable[dict[str, Any]],
    *,
    algorithm: dict[str, Any] | str | None = "max",
    description: str | None = None,
    effective_bits: float | None = None,
) -> dict[str, Any]:
    """A flat recipe document with its fingerprint."""
    if isinstance(algorithm, str):
        algorithm = {"method": algorithm}
    document: dict[str, Any] = {
        "$schema": FLAT_SCHEMA_URI,
        "fingerprint": "",
        "metadata": {
            "recipe_type": "ptq",
            "description": default_description() if description is None else description,
        },
        "quantize": {
            "algorithm": copy.deepcopy(algorithm),
            "quant_cfg": list(quant_cfg),
            "effective_bits": effective_bits,
        },
    }
    document["fingerprint"] = fingerprint(document)
    return document
