"""Planning, installing and removing quantizers over a whole model, one kind at a time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from torch import nn

from ..quantizer import AnyQuantizer, SequentialQuantizer, TensorQuantizer
from .attention import KVAttention
from .base import WIRING_ATTR, Owner, Placement, Wiring
from .experts import FusedExperts
from .layers import Layers

PLACEMENTS: tuple[Placement, ...] = (Layers(), FusedExperts(), KVAttention())
"""Every kind of module that gets quantizers; a module belongs to the first that plans it."""


def plan(model: nn.Module) -> list[Owner]:
    """The quantizers :func:`install` would add to ``model``, without changing it."""
    owners: list[Owner] = []
    for name, module in model.named_modules():
        if isinstance(module, (TensorQuantizer, SequentialQuantizer)):
            continue
        for placement in PLACEMENTS:
            owner = placement.plan(name, module)
            if owner is not None:
                owners.append(owner)
                break
    return owners


def install(owners: list[Owner], quantizers: Mapping[str, AnyQuantizer]) -> None:
    """Attach the quantizers (keyed by slot name) to their owners and hook them up."""
    for owner in owners:
        wiring = owner.placement.install(owner, quantizers)
        setattr(owner.module, WIRING_ATTR, wiring)


def has_quantizers(model: nn.Module) -> bool:
    """True when ``model`` (or a submodule) carries quantizers placed by this package."""
    return any(WIRING_ATTR in m.__dict__ for m in model.modules())


def remove_quantizers(model: nn.Module) -> int:
    """Take out every quantizer and hook placed by :func:`install`; returns the owner count."""
    removed = 0
    for module in list(model.modules()):
        wiring = Wiring.of(module)
        if wiring is None:
            continue
        del module.__dict__[WIRING_ATTR]
        wiring.remove(module)
        removed += 1
    for placement in PLACEMENTS:
        placement.after_removal()
    return removed


def iter_quantizers(model: nn.Module) -> Iterator[tuple[str, AnyQuantizer]]:
    """``(full name, quantizer)`` for every placed quantizer, per-expert ones included."""
    for name, module in model.named_modules():
        if isinstance(module, (TensorQuantizer, SequentialQuantizer)) and not isinstance(
            _parent_of(model, name), SequentialQuantizer
        ):
            yield name, module


def _parent_of(model: nn.Module, name: str) -> nn.Module | None:
    if "." not in name:
        return model
    return model.get_submodule(name.rsplit(".", 1)[0])
