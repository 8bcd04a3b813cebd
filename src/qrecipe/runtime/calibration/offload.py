"""Weights offloaded by accelerate (``device_map`` with CPU or disk offload), made real.

A module dispatched with offloading holds its parameters on the ``meta`` device; accelerate's
hook loads them for the duration of each forward call and drops them afterwards. Calibration
reads weights outside forward calls (weight amax, AWQ and GPTQ statistics) and some algorithms
change them, so :func:`materialized` loads the weights of a module (and everything under it)
for the duration of a block and, when asked to, writes changed weights back to the hook's
weights map so that later forward calls load the changed values (see
:mod:`qrecipe.runtime.offloading`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..offloading import module_offload_hook, write_to_store


def is_offloaded(model: nn.Module) -> bool:
    """Whether any module of ``model`` has its weights offloaded by an accelerate hook."""
    return any(module_offload_hook(m) is not None for m in model.modules())


@contextlib.contextmanager
def materialized(module: nn.Module, *, writeback: bool) -> Iterator[None]:
    """The weights of ``module`` and its submodules loaded for the block (a no-op without
    offloading); ``writeback``: changed weights go back to the offload store afterwards."""
    loaded: list[tuple[nn.Module, Any, bool, dict[str, tuple[int, int]]]] = []
    for inner in module.modules():
        hook = module_offload_hook(inner)
        if hook is None:
            continue
        needs_loading = any(p.device.type == "meta" for p in inner.parameters())
        if needs_loading:
            hook.pre_forward(inner)
        # Forward calls inside the block must not drop the weights again.
        hook.offload = False
        # In-place changes bump a tensor's version: only changed weights are written back (a
        # copy of an unchanged weight would only take memory from what is offloaded).
        versions = {n: (id(t), t._version) for n, t in inner.state_dict(keep_vars=True).items()}
        loaded.append((inner, hook, needs_loading, versions))
    try:
        with torch.no_grad():
            yield
    finally:
        for inner, hook, was_loaded, versions in loaded:
            hook.offload = True
            if writeback:
                changed = {
                    name: tensor
                    for name, tensor in inner.state_dict(keep_vars=True).items()
                    if versions.get(name) != (id(tensor), tensor._version)
                }
                write_to_store(hook, changed)
            if was_loaded:
                hook.post_forward(inner, None)
