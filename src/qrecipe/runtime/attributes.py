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


def copy_attributes(value: Any) -> Any:
    """A copy of an attribute object (or of any JSON-like value) sharing nothing mutable.

    Attribute objects hold only mappings, lists and scalars, so this gives what
    ``copy.deepcopy`` gives, several times faster: a model with tens of thousands of
    quantizers copies one per quantizer and per matching entry.
    """
    if type(value) is dict:
        return {key: copy_attributes(item) for key, item in value.items()}
    if type(value) is list:
        return [copy_attributes(item) for item in value]
    if isinstance(value, (dict, list)):  # a subclass: keep its type, as deepcopy would
        return copy.deepcopy(value)
    return value


def default_attributes(**overrides: Any) -> dict[str, Any]:
    """A fresh attribute object with the defaults, updated by ``overrides``."""
    attributes: dict[str, Any] = copy_attributes(ATTRIBUTE_DEFAULTS)
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
    # Merged first and copied once: the defaults a flat cfg overrides are never copied.
    attributes: dict[str, Any] = copy_attributes({**ATTRIBUTE_DEFAULTS, **cfg})
    attributes["enable"] = bool(enable)
    return attributes
