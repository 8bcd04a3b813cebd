"""Weights offloaded by accelerate (``device_map`` with CPU or disk offload), made real.

A module dispatched with offloading holds its parameters on the ``meta`` device; accelerate's
hook loads them for the duration of each forward call and drops them afterwards. Calibration
reads weights outside forward calls (weight amax, AWQ and GPTQ statistics) and some algorithms
change them, so :func:`materialized` loads the weights of a module (and everything under it)
for the duration of a block and, when asked to, writes changed weights back to the hook's
weights map so that later forward calls load the changed values.

Nothing here imports accelerate: its hooks are recognised by their attributes (an
``AlignDevicesHook`` has ``offload``, ``weights_map``, ``pre_forward`` and ``post_forward``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def _offload_hook(hook: Any) -> Any:
    """The hook that offloads weights inside an accelerate hook (or a sequence of hooks)."""
    if hook is None:
        return None
    inner_hooks = getattr(hook, "hooks", ())
    offloads = getattr(hook, "offload", False) and getattr(hook, "weights_map", None) is not None
    if offloads and not inner_hooks:
        return hook
    for inner in inner_hooks:
        found = _offload_hook(inner)
        if found is not None:
            return found
    return None


def is_offloaded(model: nn.Module) -> bool:
    """Whether any module of ``model`` has its weights offloaded by an accelerate hook."""
    return any(_offload_hook(getattr(m, "_hf_hook", None)) is not None for m in model.modules())


def _write_back(module: nn.Module, hook: Any) -> None:
    """Put the module's (materialised, possibly changed) tensors into the hook's weights map."""
    weights_map = hook.weights_map
    prefix = getattr(weights_map, "prefix", "")
    target = getattr(getattr(weights_map, "dataset", None), "state_dict", weights_map)
    for name, tensor in module.state_dict(keep_vars=True).items():
        if tensor.device.type == "meta":
            continue
        key = prefix + name
        index = getattr(getattr(weights_map, "dataset", None), "index", {})
        if key in target:
            existing = target[key]
            target[key] = tensor.detach().to(existing.device, dtype=existing.dtype)
        elif key in index:
            # A weight on disk: the in-memory state dict takes precedence over the files.
            target[key] = tensor.detach().cpu()


@contextlib.contextmanager
def materialized(module: nn.Module, *, writeback: bool) -> Iterator[None]:
    """The weights of ``module`` and its submodules loaded for the block (a no-op without
    offloading); ``writeback``: changed weights go back to the offload store afterwards."""
    loaded: list[tuple[nn.Module, Any, bool]] = []
    for inner in module.modules():
        hook = _offload_hook(getattr(inner, "_hf_hook", None))
        if hook is None:
            continue
        needs_loading = any(p.device.type == "meta" for p in inner.parameters())
        if needs_loading:
            hook.pre_forward(inner)
        # Forward calls inside the block must not drop the weights again.
        hook.offload = False
        loaded.append((inner, hook, needs_loading))
    try:
        with torch.no_grad():
            yield
    finally:
        for inner, hook, was_loaded in loaded:
            hook.offload = True
            if writeback:
                _write_back(inner, hook)
            if was_loaded:
                hook.post_forward(inner, None)
