"""Rules for the options of calibration algorithms.

Each rule accepts the values under which this runtime behaves like the reference and explains
why it refuses any other; options no rule names are refused too (see
:func:`qrecipe.runtime.checks.check_algorithm`), so a recipe never silently asks for more than
the runtime does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .base import OptionRule

LAYERWISE_KEYS = (
    "enable",
    "get_qdq_activations_from_prev_layer",
    "checkpoint_dir",
    "save_every",
    "calib_mutates_weights",
)


def accepted(option: str, value: Any) -> str | None:
    """Any value: the option does not change what this runtime computes."""
    return None


def null_only(option: str, value: Any) -> str | None:
    return None if value is None else f"option {option!r} must be null here"


def false_only(option: str, value: Any) -> str | None:
    return f"option {option!r} must be false here" if value else None


def positive_or_null(option: str, value: Any) -> str | None:
    positive = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return None if value is None or positive else f"option {option!r} must be a positive number"


def fraction_or_null(option: str, value: Any) -> str | None:
    """A number in (0, 1], or null for the default."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None or (number and 0 < value <= 1):
        return None
    return f"option {option!r} must be a number in (0, 1]"


def unit_interval_or_null(option: str, value: Any) -> str | None:
    """A number in [0, 1], or null for the default."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None or (number and 0 <= value <= 1):
        return None
    return f"option {option!r} must be a number in [0, 1]"


def positive_int_or_null(option: str, value: Any) -> str | None:
    integer = isinstance(value, int) and not isinstance(value, bool)
    if value is None or (integer and value >= 1):
        return None
    return f"option {option!r} must be a positive integer"


def _layerwise_problem(value: Any, mutates_weights: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return "option 'layerwise' must be an object"
    unknown = sorted(set(value) - set(LAYERWISE_KEYS))
    if unknown:
        return f"layerwise: unknown key(s) {', '.join(unknown)}"
    if value.get("checkpoint_dir") is not None and not value.get("enable"):
        return "layerwise.checkpoint_dir needs layerwise.enable: true"
    if mutates_weights and value.get("calib_mutates_weights") is False:
        return (
            "layerwise.calib_mutates_weights: false is for algorithms that only set amax (max, "
            "mse, nvfp4_act_headroom); this algorithm changes weights"
        )
    return None


def layerwise(option: str, value: Any) -> str | None:
    """The ``layerwise`` object of an algorithm that only sets amax."""
    return _layerwise_problem(value, mutates_weights=False)


def layerwise_mutating(option: str, value: Any) -> str | None:
    """The ``layerwise`` object of an algorithm that changes weights."""
    return _layerwise_problem(value, mutates_weights=True)


def shared_states(option: str, value: Any) -> str | None:
    """``{weight_global_amax: {patterns: [regex, ...]}}`` or null (the default groups)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"weight_global_amax"}:
        return "option 'shared_states' supports only the state 'weight_global_amax'"
    state = value["weight_global_amax"]
    if not isinstance(state, Mapping) or set(state) - {"patterns"}:
        return "shared_states.weight_global_amax takes only 'patterns' (a list of regexes)"
    patterns = state.get("patterns", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        return "shared_states.weight_global_amax.patterns must be a list of strings"
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"shared_states.weight_global_amax.patterns: invalid regex {pattern!r}: {exc}"
    return None


COMMON_OPTIONS: dict[str, OptionRule] = {
    "distributed_sync": accepted,
    "layerwise": layerwise,
    "moe_calib_experts_ratio": null_only,
}
"""Options every algorithm understands."""

MUTATING_OPTIONS: dict[str, OptionRule] = {**COMMON_OPTIONS, "layerwise": layerwise_mutating}
"""Options of every algorithm that changes weights."""
