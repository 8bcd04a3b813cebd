"""Rules for the options of calibration algorithms.

Each rule accepts the values under which this runtime behaves like the reference and explains
why it refuses any other; options no rule names are refused too (see
:func:`qrecipe.runtime.checks.check_algorithm`), so a recipe never silently asks for more than
the runtime does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import OptionRule


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


def not_layerwise(option: str, value: Any) -> str | None:
    enabled = value and (not isinstance(value, Mapping) or value.get("enable"))
    return "layer-by-layer calibration is not supported" if enabled else None


COMMON_OPTIONS: dict[str, OptionRule] = {
    # One process: there is nothing to synchronise.
    "distributed_sync": accepted,
    "layerwise": not_layerwise,
    "moe_calib_experts_ratio": null_only,
    "shared_states": null_only,
}
"""Options every algorithm understands."""
