"""What the runtime refuses, checked before the model is touched.

A backend it does not have, a model that already carries a recipe, calibration algorithms and
options it does not run (see :mod:`.calibration`), and formats its kernels do not run on any
quantizer the recipe enables (see :mod:`.kernels.formats`). Every refusal of a recipe is an
:class:`~.errors.UnsupportedRecipeError` naming the JSON pointer of the cause.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from .calibration import ALGORITHMS
from .errors import UnsupportedRecipeError, unsupported
from .kernels import BACKENDS, QuantFormat, UnsupportedFormatError
from .matching import RecipePlan
from .placement import has_quantizers


def check_backend(backend: str) -> None:
    """Refuse a kernel backend that does not exist."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


RECIPE_SUFFIXES = (".yaml", ".yml")


def check_flat_source(flat: object) -> None:
    """Refuse a recipe that is not in its flat form, saying how to get that form.

    ``apply`` reads only flat recipes; a YAML file, a directory recipe or a built-in name is
    the source of one and must be resolved first.
    """
    if not isinstance(flat, (str, os.PathLike)):
        return
    text = os.fspath(flat)
    if text.lstrip().startswith("{"):
        return  # JSON text
    path = Path(text)
    if path.suffix in RECIPE_SUFFIXES or path.is_dir():
        what = f"{text!r} is a recipe source"
    elif path.suffix != ".json" and not path.is_file():
        what = f"{text!r} is not a flat recipe file (a built-in recipe name?)"
    else:
        return
    raise ValueError(
        f"apply() takes a flat recipe (a .json file, JSON text or a dict); {what}: resolve it "
        f"first, e.g. apply(model, qrecipe.resolve({text!r}))"
    )


def check_not_quantized(model: nn.Module) -> None:
    """Refuse a model that already carries a recipe's quantizers."""
    if has_quantizers(model):
        raise ValueError(
            "the model already carries qrecipe quantizers; call qrecipe.runtime.remove(model) "
            "before applying another recipe"
        )


def check_algorithm(algorithm: dict[str, Any] | None) -> None:
    """Refuse calibration methods and options the runtime does not implement."""
    if algorithm is None:
        return
    method = algorithm.get("method")
    if method not in ALGORITHMS:
        supported = ", ".join(ALGORITHMS)
        raise UnsupportedRecipeError(
            unsupported(
                f"calibration algorithm {method!r} is not supported by the runtime; supported: "
                f"{supported}, or null (no calibration)",
                "/quantize/algorithm/method",
                hint="pick one of the supported methods, e.g. 'algorithm: max'",
            )
        )
    rules = ALGORITHMS[method].options
    problems = []
    for option, value in algorithm.items():
        if option == "method":
            continue
        pointer = f"/quantize/algorithm/{option}"
        rule = rules.get(option)
        if rule is None:
            problem: str | None = (
                f"option {option!r} of algorithm {method!r} is not supported; supported: "
                f"{', '.join(sorted(rules))}"
            )
        else:
            problem = rule(option, value)
        if problem is not None:
            problems.append(unsupported(problem, pointer))
    if problems:
        raise UnsupportedRecipeError(problems)


def _stage_problem(attributes: dict[str, Any]) -> str | None:
    """Why the runtime cannot run one enabled attribute object, or None.

    The format's own refusals (bias, rotate, ...) come from :meth:`QuantFormat.from_cfg`; the
    rest are attributes the runtime, not the format, would have to honour.
    """
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
    return None


def check_formats(plan: RecipePlan) -> None:
    """Refuse the recipe when any quantizer it enables has a format the runtime cannot run."""
    found: dict[tuple[str, str], list[str]] = {}
    for slot in plan.slots:
        decision = plan.decisions[slot.name]
        for number, stage in enumerate(decision.stages):
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
            unsupported(
                f"{problem} ({where}, enabled for {shown})",
                pointer,
                hint="disable these quantizers or pick a supported format "
                "(qrecipe.runtime.kernels.SUPPORTED_FORMATS)",
            )
        )
    raise UnsupportedRecipeError(diagnostics)
