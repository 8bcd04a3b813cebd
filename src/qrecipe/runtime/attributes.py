"""Quantizer attribute objects: defaults, and the per-placement starting state.

A flat recipe lists all nineteen attributes for every ``cfg``; quantizers that no entry
configures keep the state they were created with. That state follows the reference
implementation so that a recipe means the same thing here: 8-bit integer, enabled, for inputs
and weights (per output channel for linear and convolution weights); output quantizers start
disabled.
"""

from __future__ import annotations

import copy
from typing import Any

from ..schema import attribute_defaults

# The published flat schema is the one place the defaults are written down.
ATTRIBUTE_DEFAULTS: dict[str, Any] = attribute_defaults()


def default_attributes(**overrides: Any) -> dict[str, Any]:
    """A fresh attribute object with the defaults, updated by ``overrides``."""
    attributes = copy.deepcopy(ATTRIBUTE_DEFAULTS)
    unknown = set(overrides) - set(attributes)
    if unknown:
        raise KeyError(f"unknown quantizer attributes: {sorted(unknown)}")
    attributes.update(overrides)
    return attributes


def complete_attributes(cfg: dict[str, Any], enable: bool) -> dict[str, Any]:
    """``cfg`` with every attribute present and ``enable`` set by its entry.

    The flat form already lists all attributes; filling gaps keeps hand-written dicts usable.
    The entry's ``enable`` wins over the one inside ``cfg``, as in the reference.
    """
    attributes = default_attributes()
    attributes.update(copy.deepcopy(cfg))
    attributes["enable"] = bool(enable)
    return attributes
