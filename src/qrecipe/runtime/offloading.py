"""Accelerate's offload store: where a dispatched model keeps the weights it offloads.

A module dispatched with offloading (``device_map`` with ``"cpu"`` or ``"disk"``) holds its
parameters on the ``meta`` device; its hook loads them from a weights map for each forward call.
Code that changes weights outside forward calls (calibration) or puts them back (removal) goes
through the map: :func:`write_to_store` and :func:`restore_in_store`.

Nothing here imports accelerate: its hooks are recognised by their attributes (an
``AlignDevicesHook`` has ``offload``, ``weights_map``, ``pre_forward`` and ``post_forward``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def offload_hook(hook: Any) -> Any:
    """The hook that offloads weights inside an accelerate hook (or a sequence of hooks)."""
    if hook is None:
        return None
    inner_hooks = getattr(hook, "hooks", ())
    offloads = getattr(hook, "offload", False) and getattr(hook, "weights_map", None) is not None
    if offloads and not inner_hooks:
        return hook
    for inner in inner_hooks:
        found = offload_hook(inner)
        if found is not None:
            return found
    return None


def module_offload_hook(module: nn.Module) -> Any:
    """The offloading hook of ``module`` itself, or None."""
    return offload_hook(module.__dict__.get("_hf_hook"))


def _store(hook: Any) -> tuple[str, Any, Mapping[str, Any]]:
    """(key prefix, the in-memory map written to, the index of weights kept on disk)."""
    weights_map = hook.weights_map
    dataset = getattr(weights_map, "dataset", None)
    target = getattr(dataset, "state_dict", weights_map)
    return getattr(weights_map, "prefix", ""), target, getattr(dataset, "index", {})


def write_to_store(hook: Any, tensors: Mapping[str, torch.Tensor]) -> None:
    """Put (changed) tensors, by name in the module, into the hook's weights map, so that later
    forward calls load them. A weight on disk is overridden in memory (the file is not
    changed): the loader's in-memory map takes precedence over its files."""
    prefix, target, index = _store(hook)
    for name, tensor in tensors.items():
        if tensor.device.type == "meta":
            continue
        key = prefix + name
        if key in target:
            existing = target[key]
            target[key] = tensor.detach().to(existing.device, dtype=existing.dtype)
        elif key in index:
            target[key] = tensor.detach().cpu()


def restore_in_store(hook: Any, originals: Mapping[str, torch.Tensor]) -> None:
    """Undo :func:`write_to_store`: a weight on disk loses its in-memory override (the file
    holds the original), a weight kept in memory gets its original value back."""
    prefix, target, index = _store(hook)
    for name, original in originals.items():
        key = prefix + name
        if key in index:
            target.pop(key, None)
        elif key in target:
            existing = target[key]
            target[key] = original.detach().to(existing.device, dtype=existing.dtype)
