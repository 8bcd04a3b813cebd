"""``apply(model, flat)``: place, configure and calibrate quantizers as a flat recipe says."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ..language import Diagnostic, RecipeError, load_flat
from .calibrate import MAX_OPTIONS, MSE_OPTIONS, ForwardLoop, calibrate
from .kernels import QuantFormat, UnsupportedFormatError
from .matching import Decision, EntryMatch, decide
from .placement import (
    Slot,
    class_names,
    display_class_name,
    has_quantizers,
    install,
    plan,
    remove_quantizers,
)
from .quantizer import AnyQuantizer, iter_stages, make_quantizer
from .report import AmaxStats, EntryRecord, QuantizerRecord, QuantReport

SUPPORTED_ALGORITHMS = ("max", "mse", None)
"""Calibration methods the runtime runs; None (``algorithm: null``) means no calibration."""

BACKENDS = ("auto", "torch", "triton")

FlatSource = str | os.PathLike[str] | Mapping[str, Any]


class UnsupportedRecipeError(RecipeError):
    """The recipe is valid but asks for something this runtime cannot do."""

    code = "unsupported"


def _unsupported(message: str, pointer: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(
        message, "<flat recipe>", pointer=pointer, code=UnsupportedRecipeError.code, hint=hint
    )


def _positive(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def check_algorithm(algorithm: dict[str, Any] | None) -> None:
    """Refuse calibration methods and options the runtime does not implement."""
    if algorithm is None:
        return
    method = algorithm.get("method")
    supported = "max, mse, or null (no calibration)"
    if method not in ("max", "mse"):
        raise UnsupportedRecipeError(
            _unsupported(
                f"calibration algorithm {method!r} is not supported by the runtime; supported: "
                f"{supported}",
                "/quantize/algorithm/method",
                hint="resolve a recipe with 'algorithm: max' (or mse) to run it here",
            )
        )
    allowed = MAX_OPTIONS if method == "max" else MSE_OPTIONS
    problems: list[Diagnostic] = []
    for option, value in algorithm.items():
        pointer = f"/quantize/algorithm/{option}"
        if option == "method":
            continue
        if option not in allowed:
            problems.append(
                _unsupported(
                    f"option {option!r} of algorithm {method!r} is not supported; supported: "
                    f"{', '.join(sorted(allowed))}",
                    pointer,
                )
            )
        elif (
            option == "layerwise"
            and value
            and (not isinstance(value, Mapping) or value.get("enable"))
        ):
            problems.append(_unsupported("layer-by-layer calibration is not supported", pointer))
        elif option in ("moe_calib_experts_ratio", "shared_states") and value is not None:
            problems.append(_unsupported(f"option {option!r} must be null here", pointer))
        elif option in ("fp8_scale_sweep", "sync_expert_weight_amax") and value:
            problems.append(_unsupported(f"option {option!r} must be false here", pointer))
        elif option in ("step_size", "start_multiplier", "stop_multiplier") and not _positive(
            value
        ):
            problems.append(_unsupported(f"option {option!r} must be a positive number", pointer))
    if problems:
        raise UnsupportedRecipeError(problems)


def _stage_problem(attributes: dict[str, Any]) -> str | None:
    """Why the runtime cannot run one enabled attribute object, or None."""
    try:
        fmt = QuantFormat.from_cfg(attributes)
    except UnsupportedFormatError as exc:
        return str(exc)
    except (KeyError, TypeError, ValueError) as exc:
        return f"invalid quantizer attributes: {exc}"
    static = fmt.needs_calibration and not (
        attributes["use_constant_amax"] or attributes["constant_amax"] is not None
    )
    if static and attributes["calibrator"] != "max":
        return f"calibrator {attributes['calibrator']!r} is not supported (only 'max')"
    if attributes["learn_amax"]:
        return "learn_amax (trainable amax) is not supported"
    if attributes["bias"] is not None:
        return "bias (affine quantization) is not supported"
    rotate = attributes["rotate"]
    if rotate is True or (isinstance(rotate, Mapping) and rotate.get("enable")):
        return "rotate (Hadamard rotation) is not supported"
    return None


def check_formats(slots: list[Slot], decisions: dict[str, Decision]) -> None:
    """Refuse the recipe when any quantizer it enables has a format the runtime cannot run."""
    found: dict[tuple[str, str], list[str]] = {}
    for slot in slots:
        decision = decisions[slot.name]
        stages = (
            decision.attributes if isinstance(decision.attributes, list) else [decision.attributes]
        )
        for number, stage in enumerate(stages):
            if not stage["enable"]:
                continue
            problem = _stage_problem(stage)
            if problem is None:
                continue
            if decision.configured_by is None:
                pointer = ""
            else:
                pointer = f"/quantize/quant_cfg/{decision.configured_by}/cfg"
                if isinstance(decision.attributes, list):
                    pointer += f"/{number}"
            found.setdefault((pointer, problem), []).append(slot.name)
    if not found:
        return
    diagnostics = []
    for (pointer, problem), names in found.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        where = "default attributes" if not pointer else "this cfg"
        diagnostics.append(
            _unsupported(
                f"{problem} ({where}, enabled for {shown})",
                pointer,
                hint="disable these quantizers or pick a supported format "
                "(qrecipe.runtime.kernels.SUPPORTED_FORMATS)",
            )
        )
    raise UnsupportedRecipeError(diagnostics)


def _unmatched_warning(entry: EntryMatch, model_classes: set[str]) -> str:
    text = f"quant_cfg entry {entry.index} (quantizer_name {entry.quantizer_name!r}"
    if entry.parent_class:
        text += f", parent_class {entry.parent_class!r}"
    text += ") matched no quantizer"
    if entry.parent_class and entry.parent_class not in model_classes:
        text += f"; the model has no module of class {entry.parent_class}"
        if f"nn.{entry.parent_class}" in model_classes:
            text += f" (torch classes are written nn.{entry.parent_class})"
    return text


def _amax_stats(quantizer: AnyQuantizer) -> AmaxStats | None:
    values = [
        s.amax.detach().float().flatten() for s in iter_stages(quantizer) if s.amax is not None
    ]
    if not values:
        return None
    joined = torch.cat([v.cpu() for v in values])
    first = next(s.amax for s in iter_stages(quantizer) if s.amax is not None)
    return AmaxStats(
        min=float(joined.min()),
        max=float(joined.max()),
        mean=float(joined.mean()),
        numel=int(joined.numel()),
        shape=list(first.shape),
    )


def apply(
    model: nn.Module,
    flat: FlatSource,
    *,
    forward_loop: ForwardLoop | None = None,
    backend: str = "auto",
    progress: bool = True,
) -> QuantReport:
    """Quantize ``model`` in place as the flat recipe ``flat`` says, and report what was done.

    ``flat`` is a path, JSON text or a dict; it is validated (schema and fingerprint) first.
    Every check (recipe validity, algorithm, formats of the quantizers it enables) runs before
    the model is changed: when one fails the model is left exactly as it was. ``forward_loop``
    is called as ``forward_loop(model)`` to calibrate activations. ``backend`` picks the
    fake-quant kernels: ``"triton"``, ``"torch"`` or ``"auto"``. Undo with :func:`remove`.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    document = load_flat(flat)
    quantize = document["quantize"]
    algorithm = quantize.get("algorithm")
    check_algorithm(algorithm)
    if has_quantizers(model):
        raise ValueError(
            "the model already carries qrecipe quantizers; call qrecipe.runtime.remove(model) "
            "before applying another recipe"
        )
    timings["load"] = time.perf_counter() - started

    mark = time.perf_counter()
    owners = plan(model)
    slots = [slot for owner in owners for slot in owner.slots]
    decisions, matches = decide(slots, quantize["quant_cfg"])
    check_formats(slots, decisions)
    timings["plan"] = time.perf_counter() - mark

    mark = time.perf_counter()
    quantizers = {s.name: make_quantizer(decisions[s.name].attributes, backend) for s in slots}
    install(owners, quantizers)
    timings["place"] = time.perf_counter() - mark

    placed = [(slot, quantizers[slot.name]) for slot in slots]
    try:
        result = calibrate(model, placed, algorithm, forward_loop, progress=progress)
    except BaseException:
        # A failed calibration must not leave a half-quantized model behind.
        remove_quantizers(model)
        raise
    timings.update(result.timings)

    model_classes = set().union(*(class_names(m) for m in model.modules()))
    warnings = [_unmatched_warning(e, model_classes) for e in matches if not e.matched]
    untouched = [
        s.name for s in slots if decisions[s.name].decided_by is None and decisions[s.name].enabled
    ]
    if untouched:
        warnings.append(
            f"{len(untouched)} quantizer(s) matched no entry and keep their default attributes "
            f"(8-bit integer, enabled), e.g. {untouched[0]}; recipes usually start with "
            "{quantizer_name: '*', enable: false}"
        )
    warnings += result.warnings

    report = QuantReport(
        fingerprint=document["fingerprint"],
        algorithm=algorithm,
        backend=backend,
        entries=[
            EntryRecord(
                e.index, e.quantizer_name, e.parent_class, e.enable, e.has_cfg, len(e.matched)
            )
            for e in matches
        ],
        warnings=warnings,
        calibration_batches=result.batches,
    )
    for slot in slots:
        quantizer = quantizers[slot.name]
        decision = decisions[slot.name]
        report.quantizers.append(
            QuantizerRecord(
                name=slot.name,
                parent_class=display_class_name(slot.parent),
                role=slot.role,
                format=quantizer.describe(),
                enabled=quantizer.enabled,
                decided_by=decision.decided_by,
                configured_by=decision.configured_by,
                amax=_amax_stats(quantizer),
            )
        )
    timings["total"] = time.perf_counter() - started
    report.timings = timings
    return report


def remove(model: nn.Module) -> int:
    """Take every quantizer and hook out of ``model``; returns how many layers were restored.

    The model's own modules, parameters and outputs are exactly what they were before
    :func:`apply`. Calling it on a model without quantizers does nothing.
    """
    return remove_quantizers(model)


@contextlib.contextmanager
def quantized(
    model: nn.Module,
    flat: FlatSource,
    *,
    forward_loop: ForwardLoop | None = None,
    backend: str = "auto",
    progress: bool = True,
) -> Iterator[QuantReport]:
    """``with quantized(model, flat) as report:`` — the model is quantized inside the block only."""
    report = apply(model, flat, forward_loop=forward_loop, backend=backend, progress=progress)
    try:
        yield report
    finally:
        remove(model)
