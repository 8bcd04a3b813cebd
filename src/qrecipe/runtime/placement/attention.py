"""Attention modules of ``transformers``: the query, key and value states (the KV cache).

Attention modules that call the attention interface get ``<attn>.q_bmm_quantizer``,
``<attn>.k_bmm_quantizer`` and ``<attn>.v_bmm_quantizer``, applied to the states as they enter
the attention function (after rotary embedding and the cache update, before heads are
repeated).

The states exist only inside the module's forward, where it calls a function shared by every
model of its architecture (``eager_attention_forward`` of the modeling module, or an entry of
its ``AttentionInterface``). While a quantized attention module exists, that function is
wrapped by :class:`KVQuantizedAttention`, which quantizes only for modules that carry the
quantizers; the wrapper is taken out once the last such module is removed.
"""

from __future__ import annotations

import inspect
import sys
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..quantizer import AnyQuantizer
from .base import Owner, Placement, Wiring, quantizer_at

ROLES = ("q_bmm", "k_bmm", "v_bmm")
EAGER_FUNCTION = "eager_attention_forward"


def _uses_attention_interface(module: nn.Module) -> bool:
    modeling = sys.modules.get(type(module).__module__)
    return modeling is not None and getattr(modeling, "ALL_ATTENTION_FUNCTIONS", None) is not None


def is_kv_attention(module: nn.Module) -> bool:
    """True for a ``transformers`` attention module that calls the attention interface.

    Wrappers that hold another attention module (``BertAttention`` around
    ``BertSelfAttention``) are skipped so that the states are quantized once, by the inner one.
    """
    if not type(module).__name__.endswith("Attention"):
        return False
    if not _uses_attention_interface(module):
        return False
    return not any(
        child is not module and type(child).__name__.endswith("Attention")
        for child in module.modules()
    )


@dataclass(kw_only=True)
class AttentionWiring(Wiring):
    """An attention module whose query, key and value states are quantized."""

    def remove(self, module: nn.Module) -> None:
        super().remove(module)
        _KV_ATTENTION_MODULES.discard(module)


class KVAttention(Placement):
    """Query/key/value quantizers applied inside the shared attention function."""

    kind = "attention"

    def plan(self, name: str, module: nn.Module) -> Owner | None:
        if not is_kv_attention(module):
            return None
        owner = Owner(name, module, self)
        for role in ROLES:
            owner.add(f"{role}_quantizer", role)
        return owner

    def install(self, owner: Owner, quantizers: Mapping[str, AnyQuantizer]) -> Wiring:
        module = owner.module
        wiring = AttentionWiring()
        for slot in owner.slots:
            wiring.attach(module, slot.attr, quantizers[slot.name])
        wiring.handles.append(module.register_forward_pre_hook(_pre_hook, with_kwargs=True))
        _KV_ATTENTION_MODULES.add(module)
        return wiring

    def after_removal(self) -> None:
        if not _KV_ATTENTION_MODULES:
            restore_attention_functions()


def _pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Make sure the attention function ``module`` is about to call quantizes its states.

    Checked on every call rather than once at installation, so that a model loaded from a
    pickle (or whose attention implementation changed) gets the wrapper it needs.
    """
    if AttentionWiring.of(module) is not None:
        ensure_attention_patched(module)


# -- the shared attention functions --------------------------------------------------------------

_KV_ATTENTION_MODULES: weakref.WeakSet[nn.Module] = weakref.WeakSet()
_ATTENTION_LOCK = threading.Lock()


class KVQuantizedAttention:
    """Wraps an attention function: quantizes query/key/value with the module's quantizers.

    ``transformers`` attention functions are called as ``fn(module, query, key, value, ...)``.
    The wrapper quantizes only for modules that carry the quantizers, so patching the shared
    function leaves every other model unchanged.
    """

    def __init__(self, original: Any) -> None:
        self.original = original
        self.__name__ = getattr(original, "__name__", "attention_forward")
        self.__doc__ = getattr(original, "__doc__", None)

    def __call__(
        self,
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if AttentionWiring.of(module) is not None:
            query = quantizer_at(module, "q_bmm_quantizer")(query)
            key = quantizer_at(module, "k_bmm_quantizer")(key)
            value = quantizer_at(module, "v_bmm_quantizer")(value)
        return self.original(module, query, key, value, *args, **kwargs)


@dataclass
class _AttentionPatch:
    """One shared attention function replaced by a :class:`KVQuantizedAttention`."""

    target: Any
    """The modeling module (an attribute patch) or the ``AttentionInterface`` (an item patch)."""
    key: str
    """The attribute or item name."""
    original: Any
    is_item: bool
    was_local: bool
    """Item patches: the interface's local mapping held the entry (else it came from the
    global mapping, and deleting the local entry brings it back)."""

    def undo(self) -> None:
        if not self.is_item:
            setattr(self.target, self.key, self.original)
        elif self.was_local:
            self.target[self.key] = self.original
        else:
            del self.target[self.key]


# (id of the patched object, key) -> the patch; at most one patch per function.
_ATTENTION_PATCHES: dict[tuple[int, str], _AttentionPatch] = {}


def _attention_implementation(module: nn.Module) -> str | None:
    config = getattr(module, "config", None)
    if config is None:
        config = next(
            (c.config for c in module.children() if hasattr(c, "config")),
            None,
        )
    return getattr(config, "_attn_implementation", None) if config is not None else None


def ensure_attention_patched(module: nn.Module) -> None:
    """Make sure the attention function ``module`` is about to call quantizes its k/v states."""
    _KV_ATTENTION_MODULES.add(module)
    modeling = inspect.getmodule(type(module))
    if modeling is None:
        return
    implementation = _attention_implementation(module)
    interface = getattr(modeling, "ALL_ATTENTION_FUNCTIONS", None)
    with _ATTENTION_LOCK:
        if (
            implementation is None
            or implementation == "eager"
            or interface is None
            or implementation not in interface
        ):
            key = (id(modeling), EAGER_FUNCTION)
            original = getattr(modeling, EAGER_FUNCTION, None)
            patched = key in _ATTENTION_PATCHES or isinstance(original, KVQuantizedAttention)
            if patched or original is None:
                return
            setattr(modeling, EAGER_FUNCTION, KVQuantizedAttention(original))
            _ATTENTION_PATCHES[key] = _AttentionPatch(
                modeling, EAGER_FUNCTION, original, is_item=False, was_local=False
            )
            return
        key = (id(interface), implementation)
        if key in _ATTENTION_PATCHES:
            return
        original = interface[implementation]
        if isinstance(original, KVQuantizedAttention):
            return
        was_local = implementation in getattr(interface, "_local_mapping", {})
        interface[implementation] = KVQuantizedAttention(original)
        _ATTENTION_PATCHES[key] = _AttentionPatch(
            interface, implementation, original, is_item=True, was_local=was_local
        )


def restore_attention_functions() -> None:
    """Undo every attention-function patch (done once no quantized attention module is left)."""
    with _ATTENTION_LOCK:
        for patch in _ATTENTION_PATCHES.values():
            patch.undo()
        _ATTENTION_PATCHES.clear()
