"""``apply(model, flat)``: a flat recipe's quantizers placed, configured and calibrated.

Applying is a pipeline of named steps, each timed in the report:

1. **load** (:func:`load_recipe`): the document is validated and everything about the recipe
   and the model that the runtime refuses is refused (:mod:`.checks`);
2. **plan** (:func:`plan_and_check`): every quantizer the model gets and the recipe's decision
   for it, worked out without touching the model; formats the kernels cannot run are refused;
3. **place** (:func:`configure`): the quantizers are built and installed (:mod:`.placement`);
4. **calibrate** (:func:`calibrate_or_remove`): static quantizers get their amax
   (:mod:`.calibration`); when that fails the quantizers are taken out again;
5. **report** (:func:`~.report.build_report`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict

from torch import nn
from typing_extensions import Unpack

from ..language import load_flat
from .calibration import CalibrationResult, ForwardLoop, calibrate
from .checks import (
    check_algorithm,
    check_backend,
    check_flat_source,
    check_formats,
    check_not_quantized,
)
from .matching import RecipePlan, plan_recipe
from .placement import install, remove_quantizers
from .quantizer import AnyQuantizer, make_quantizer
from .report import QuantReport, build_report
from .timing import timed

FlatSource = str | os.PathLike[str] | Mapping[str, Any]
"""A flat recipe: a path, JSON text or the parsed document."""


class ApplyOptions(TypedDict, total=False):
    """The keyword options of :func:`apply` (and :func:`quantized`)."""

    forward_loop: ForwardLoop | None
    backend: str
    progress: bool
    cache_weights: bool


def apply(
    model: nn.Module,
    flat: FlatSource,
    *,
    forward_loop: ForwardLoop | None = None,
    backend: str = "auto",
    progress: bool = True,
    cache_weights: bool = False,
) -> QuantReport:
    """Quantize ``model`` in place as the flat recipe ``flat`` says, and report what was done.

    ``flat`` is a path, JSON text or a dict; it is validated (schema and fingerprint) first.
    Every check (recipe validity, algorithm, formats of the quantizers it enables) runs before
    the model is changed: when one fails the model is left exactly as it was. ``forward_loop``
    is called as ``forward_loop(model)`` to calibrate activations. ``backend`` picks the
    fake-quant kernels: ``"triton"``, ``"torch"``, ``"reference"`` or ``"auto"``.
    ``cache_weights``: keep each fake-quantized weight between forward passes run without
    autograd: 5-15% faster forward passes for one more copy of every quantized weight in memory,
    so it is off by default (peak memory then stays at ModelOpt's). Undo with :func:`remove`.
    """
    timings: dict[str, float] = {}
    with timed(timings, "total"):
        with timed(timings, "load"):
            document = load_recipe(model, flat, backend)
        with timed(timings, "plan"):
            plan = plan_and_check(model, document)
        with timed(timings, "place"):
            quantizers = configure(plan, backend, cache_weights)
        algorithm = document["quantize"].get("algorithm")
        calibration = calibrate_or_remove(
            model, plan, quantizers, algorithm, forward_loop, progress, document["fingerprint"]
        )
        timings.update(calibration.timings)
        report = build_report(model, document, plan, quantizers, calibration, backend)
    report.timings = timings
    return report


def load_recipe(model: nn.Module, flat: FlatSource, backend: str) -> dict[str, Any]:
    """The validated flat document, once nothing about it or the model is refused."""
    check_backend(backend)
    check_flat_source(flat)
    document = load_flat(flat)
    check_algorithm(document["quantize"].get("algorithm"))
    check_not_quantized(model)
    return document


def plan_and_check(model: nn.Module, document: Mapping[str, Any]) -> RecipePlan:
    """The model's quantizers with the recipe's decisions, once their formats are runnable."""
    plan = plan_recipe(model, document["quantize"]["quant_cfg"])
    check_formats(plan)
    return plan


def configure(
    plan: RecipePlan, backend: str, cache_weights: bool = False
) -> dict[str, AnyQuantizer]:
    """Build every planned quantizer in its decided state and install it; by slot name."""
    quantizers = {
        slot.name: make_quantizer(plan.decisions[slot.name].attributes, backend, cache_weights)
        for slot in plan.slots
    }
    install(plan.owners, quantizers)
    return quantizers


def calibrate_or_remove(
    model: nn.Module,
    plan: RecipePlan,
    quantizers: Mapping[str, AnyQuantizer],
    algorithm: dict[str, Any] | None,
    forward_loop: ForwardLoop | None,
    progress: bool,
    recipe_fingerprint: str = "",
) -> CalibrationResult:
    """Calibrate the installed quantizers; a failure takes them out of the model again."""
    placed = [(slot, quantizers[slot.name]) for slot in plan.slots]
    try:
        return calibrate(
            model,
            placed,
            algorithm,
            forward_loop,
            progress=progress,
            recipe_fingerprint=recipe_fingerprint,
        )
    except BaseException:
        # A failed calibration must not leave a half-quantized model behind.
        remove_quantizers(model)
        raise


def remove(model: nn.Module) -> int:
    """Take every quantizer and hook out of ``model``; returns how many layers were restored.

    The model's own modules, parameters and outputs are exactly what they were before
    :func:`apply`. Calling it on a model without quantizers does nothing.
    """
    return remove_quantizers(model)


@contextlib.contextmanager
def quantized(
    model: nn.Module, flat: FlatSource, **options: Unpack[ApplyOptions]
) -> Iterator[QuantReport]:
    """``with quantized(model, flat) as report:`` — the model is quantized inside the block only.

    Takes the keyword options of :func:`apply`.
    """
    report = apply(model, flat, **options)
    try:
        yield report
    finally:
        remove(model)
