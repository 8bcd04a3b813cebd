"""Where quantizers go, what they are called, and how they are wired into a model.

Quantizer names follow the reference implementation, so that a recipe's patterns select the
same tensors here as there:

* ``nn.Linear``, ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``: ``<module>.input_quantizer``,
  ``<module>.weight_quantizer``, ``<module>.output_quantizer``.
* ``nn.Embedding``: ``<module>.weight_quantizer`` and ``<module>.output_quantizer`` (its input
  is integer indices, which cannot be quantized).
* Normalisation, pooling and ``nn.LeakyReLU`` layers: ``<module>.input_quantizer`` and
  ``<module>.output_quantizer`` (so that ``parent_class: nn.BatchNorm2d`` exclusions apply).
* Attention modules of ``transformers`` that call the attention interface: the query, key and
  value states as they enter the attention function, ``<attn>.q_bmm_quantizer``,
  ``<attn>.k_bmm_quantizer``, ``<attn>.v_bmm_quantizer`` (the KV cache).
* Fused mixture-of-experts modules (3-D ``gate_up_proj`` or ``up_proj`` and ``down_proj``
  parameters, as in ``transformers`` 5): one weight quantizer per expert,
  ``<experts>.gate_up_proj_weight_quantizers.<i>`` and ``<experts>.down_proj_weight_quantizers.<i>``,
  and shared input quantizers ``<experts>.gate_up_proj_input_quantizer`` and
  ``<experts>.down_proj_input_quantizer``.

Quantizers are child modules of the layer they serve; forward hooks (plain module-level
functions, so that models stay picklable) quantize inputs and outputs and swap in the
fake-quantized weight for the duration of a forward call. Nothing else about the model changes,
which is what lets :func:`remove_quantizers` restore it exactly.
"""

from __future__ import annotations

import inspect
import sys
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .attributes import default_attributes
from .quantizer import AnyQuantizer, SequentialQuantizer, TensorQuantizer, iter_stages

# Owner attribute holding the wiring record; a plain dict so that pickling keeps it.
WIRING_ATTR = "_qrecipe_wiring"
# Owner attribute holding the original parameters while a forward call runs.
STASH_ATTR = "_qrecipe_stash"
# Fused-experts attribute holding the experts implementation replaced for one forward call.
IMPLEMENTATION_STASH_ATTR = "_qrecipe_experts_implementation"

_LINEAR_LIKE = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_INPUT_ONLY = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LeakyReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)


@dataclass
class Slot:
    """One place a quantizer goes; the unit that quant_cfg entries match."""

    name: str
    """Full quantizer name, e.g. ``model.layers.0.self_attn.k_bmm_quantizer``."""
    owner_name: str
    """Module path of the layer the quantizer belongs to."""
    attr: str
    """Attribute of the owner holding the quantizer (or the list of per-expert quantizers)."""
    role: str
    """``weight``, ``input``, ``output``, ``q_bmm``, ``k_bmm`` or ``v_bmm``."""
    parent: nn.Module = field(repr=False)
    """The module whose class ``parent_class`` is compared with (the owner)."""
    default: dict[str, Any] = field(repr=False)
    """Attributes the quantizer has when no entry configures it."""
    expert: int | None = None
    """Expert index for per-expert weight quantizers of fused MoE modules."""
    tensor: str | None = None
    """Parameter a weight quantizer quantizes (calibrated straight from the parameter)."""

    @property
    def match_names(self) -> tuple[str, ...]:
        """Names a pattern is tried against.

        Per-expert quantizers also answer to the name without the list index and the plural,
        ``...gate_up_proj_weight_quantizer``, so that ``*weight_quantizer`` reaches them as it
        does in the reference.
        """
        if self.expert is None:
            return (self.name,)
        prefix = self.name.rsplit(".", 1)[0]
        return (self.name, prefix.removesuffix("s"))


@dataclass
class Owner:
    """A layer that receives quantizers, with the slots it gets."""

    name: str
    module: nn.Module
    kind: str
    """``layer``, ``attention`` or ``experts``."""
    slots: list[Slot]
    first_proj: str | None = None
    """For fused experts: ``gate_up_proj`` or ``up_proj``."""


# -- class names for parent_class ------------------------------------------------------------


def class_names(module: nn.Module) -> set[str]:
    """Every name under which ``parent_class`` selects ``module``.

    Classes of ``torch.nn`` are called ``nn.<Class>`` (``nn.Linear``), as in the reference.
    Any other class answers to its plain name (``LlamaAttention``), its fully qualified name
    (``transformers.models.llama.modeling_llama.LlamaAttention``) and, for ``transformers``
    classes, ``hf.<Class>``. Base classes count too, like ``isinstance``: a subclass of
    ``nn.Linear`` is selected by ``nn.Linear``.
    """
    names: set[str] = set()
    for cls in type(module).__mro__:
        if cls in (nn.Module, object):
            continue
        module_name = cls.__module__ or ""
        if module_name == "torch.nn" or module_name.startswith("torch.nn."):
            names.add(f"nn.{cls.__name__}")
            names.add(f"torch.nn.{cls.__name__}")
        else:
            names.add(cls.__name__)
            if module_name.startswith("transformers."):
                names.add(f"hf.{cls.__name__}")
        names.add(f"{module_name}.{cls.__qualname__}")
    return names


def display_class_name(module: nn.Module) -> str:
    """The preferred ``parent_class`` spelling of the module's own class."""
    cls = type(module)
    module_name = cls.__module__ or ""
    if module_name == "torch.nn" or module_name.startswith("torch.nn."):
        return f"nn.{cls.__name__}"
    return cls.__name__


# -- planning (pure: looks at the model, changes nothing) -----------------------------------


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def fused_experts_first_projection(module: nn.Module) -> str | None:
    """``gate_up_proj``/``up_proj`` when ``module`` stores experts as 3-D parameters, else None."""
    down = module._parameters.get("down_proj")
    if down is None or down.dim() != 3:
        return None
    for first in ("gate_up_proj", "up_proj"):
        weight = module._parameters.get(first)
        if weight is not None and weight.dim() == 3 and weight.shape[0] == down.shape[0]:
            return first
    return None


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


def plan(model: nn.Module) -> list[Owner]:
    """The quantizers :func:`install` would add to ``model``, without changing it."""
    owners: list[Owner] = []
    for name, module in model.named_modules():
        if isinstance(module, (TensorQuantizer, SequentialQuantizer)):
            continue
        owner = _plan_module(name, module)
        if owner is not None:
            owners.append(owner)
    return owners


def _plan_module(name: str, module: nn.Module) -> Owner | None:
    def slot(attr: str, role: str, default: dict[str, Any], **extra: Any) -> Slot:
        return Slot(_join(name, attr), name, attr, role, module, default, **extra)

    per_tensor = default_attributes()
    if isinstance(module, _LINEAR_LIKE):
        slots = [
            slot("input_quantizer", "input", per_tensor),
            slot("output_quantizer", "output", default_attributes(enable=False)),
            slot("weight_quantizer", "weight", default_attributes(axis=0), tensor="weight"),
        ]
        return Owner(name, module, "layer", slots)
    if isinstance(module, nn.Embedding):
        slots = [
            slot("output_quantizer", "output", default_attributes(enable=False)),
            slot("weight_quantizer", "weight", per_tensor, tensor="weight"),
        ]
        return Owner(name, module, "layer", slots)
    if isinstance(module, _INPUT_ONLY):
        slots = [
            slot("input_quantizer", "input", per_tensor),
            slot("output_quantizer", "output", default_attributes(enable=False)),
        ]
        return Owner(name, module, "layer", slots)
    first = fused_experts_first_projection(module)
    if first is not None:
        experts = module._parameters["down_proj"].shape[0]
        slots = [slot(f"{first}_input_quantizer", "input", per_tensor)]
        slots += [
            slot(f"{first}_weight_quantizers.{i}", "weight", per_tensor, expert=i, tensor=first)
            for i in range(experts)
        ]
        slots.append(slot("down_proj_input_quantizer", "input", per_tensor))
        slots += [
            slot(
                f"down_proj_weight_quantizers.{i}",
                "weight",
                per_tensor,
                expert=i,
                tensor="down_proj",
            )
            for i in range(experts)
        ]
        return Owner(name, module, "experts", slots, first_proj=first)
    if is_kv_attention(module):
        slots = [
            slot(f"{role}_quantizer", role, per_tensor) for role in ("q_bmm", "k_bmm", "v_bmm")
        ]
        return Owner(name, module, "attention", slots)
    return None


# -- installing and removing ---------------------------------------------------------------


def install(owners: list[Owner], quantizers: dict[str, AnyQuantizer]) -> None:
    """Attach the quantizers (keyed by slot name) to their owners and hook them up."""
    for owner in owners:
        module = owner.module
        added: list[str] = []
        for slot in owner.slots:
            if slot.expert is not None:
                continue
            module.add_module(slot.attr, quantizers[slot.name])
            added.append(slot.attr)
        wiring: dict[str, Any] = {"kind": owner.kind, "weights": [], "input": None, "output": None}
        if owner.kind == "experts":
            assert owner.first_proj is not None
            for tensor in (owner.first_proj, "down_proj"):
                attr = f"{tensor}_weight_quantizers"
                per_expert = [s for s in owner.slots if s.tensor == tensor]
                module.add_module(attr, nn.ModuleList([quantizers[s.name] for s in per_expert]))
                added.append(attr)
                wiring["weights"].append((tensor, attr))
            wiring["input"] = f"{owner.first_proj}_input_quantizer"
            wiring["second_input"] = "down_proj_input_quantizer"
            wiring["transposed"] = bool(getattr(module, "is_transposed", False))
        else:
            roles = {slot.role: slot.attr for slot in owner.slots}
            if "weight" in roles:
                wiring["weights"].append(("weight", roles["weight"]))
            wiring["input"] = roles.get("input")
            wiring["output"] = roles.get("output")
        wiring["added"] = added
        setattr(module, WIRING_ATTR, wiring)
        module.register_forward_pre_hook(quant_pre_hook, with_kwargs=True)
        if owner.kind != "attention":
            module.register_forward_hook(quant_post_hook, with_kwargs=True, always_call=True)
        else:
            _KV_ATTENTION_MODULES.add(module)


def has_quantizers(model: nn.Module) -> bool:
    """True when ``model`` (or a submodule) carries quantizers placed by this package."""
    return any(WIRING_ATTR in m.__dict__ for m in model.modules())


def remove_quantizers(model: nn.Module) -> int:
    """Take out every quantizer and hook placed by :func:`install`; returns the owner count."""
    removed = 0
    for module in list(model.modules()):
        wiring = module.__dict__.get(WIRING_ATTR)
        if wiring is None:
            continue
        _restore_stash(module)
        _unpatch_linear(module)
        for attr in wiring.get("added", []):
            if attr in module._modules:
                del module._modules[attr]
        del module.__dict__[WIRING_ATTR]
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for hook_id in [k for k, h in hooks.items() if h in (quant_pre_hook, quant_post_hook)]:
                del hooks[hook_id]
                module._forward_pre_hooks_with_kwargs.pop(hook_id, None)
                module._forward_hooks_with_kwargs.pop(hook_id, None)
                module._forward_hooks_always_called.pop(hook_id, None)
        _KV_ATTENTION_MODULES.discard(module)
        removed += 1
    if not _KV_ATTENTION_MODULES:
        restore_attention_functions()
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


# -- forward hooks -----------------------------------------------------------------------------


def is_active(quantizer: AnyQuantizer) -> bool:
    """Whether calling the quantizer could change or observe anything."""
    return any(s.enabled or s._collector is not None for s in iter_stages(quantizer))


_WEIGHT_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[Any, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def _quantize_weight(quantizer: AnyQuantizer, weight: torch.Tensor) -> torch.Tensor:
    """Fake-quantized ``weight``; reused across calls while weight and quantizer are unchanged."""
    cacheable = not (torch.is_grad_enabled() and weight.requires_grad) and not any(
        s._collector is not None for s in iter_stages(quantizer)
    )
    if not cacheable:
        return quantizer(weight)
    key = (id(weight), weight._version, weight.device, weight.dtype, quantizer.state_token())
    cached = _WEIGHT_CACHE.get(quantizer)
    if cached is not None and cached[0] == key:
        return cached[1]
    result = quantizer(weight)
    _WEIGHT_CACHE[quantizer] = (key, result)
    return result


def _quantize_experts(
    module: nn.Module, weight: torch.Tensor, quantizers: nn.ModuleList
) -> torch.Tensor:
    transposed = module.__dict__[WIRING_ATTR].get("transposed", False)
    slices = []
    for index, quantizer in enumerate(quantizers):
        piece = weight[index]
        if not is_active(quantizer):
            slices.append(piece)
            continue
        # Quantize in (out_features, in_features) layout so blocks run along the input axis.
        if transposed:
            piece = _quantize_weight(quantizer, piece.transpose(-1, -2)).transpose(-1, -2)
        else:
            piece = _quantize_weight(quantizer, piece)
        slices.append(piece)
    return torch.stack(slices)


def _quantize_first_tensor(
    args: tuple[Any, ...], kwargs: dict[str, Any], quantizer: AnyQuantizer
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args and isinstance(args[0], torch.Tensor):
        return (quantizer(args[0]), *args[1:]), kwargs
    for key in ("input", "hidden_states", "x"):
        if isinstance(kwargs.get(key), torch.Tensor):
            return args, {**kwargs, key: quantizer(kwargs[key])}
    return args, kwargs


def quant_pre_hook(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """Quantize the input and swap in fake-quantized weights before ``module`` runs."""
    wiring = module.__dict__.get(WIRING_ATTR)
    if wiring is None:
        return None
    if wiring["kind"] == "attention":
        ensure_attention_patched(module)
        return None
    stash: dict[str, Any] = {}
    for tensor, attr in wiring["weights"]:
        quantizer = module._modules[attr]
        original = module._parameters[tensor]
        if wiring["kind"] == "experts":
            if not any(is_active(q) for q in quantizer):  # type: ignore[union-attr]
                continue
            quantized = _quantize_experts(module, original, quantizer)  # type: ignore[arg-type]
        else:
            if not is_active(quantizer):  # type: ignore[arg-type]
                continue
            quantized = _quantize_weight(quantizer, original)  # type: ignore[arg-type]
        stash[tensor] = original
        # The parameter entry itself is swapped (not the attribute) so that the module's own
        # forward, whatever it is, reads the quantized tensor; the post-hook puts it back.
        module._parameters[tensor] = quantized  # type: ignore[assignment]
    if stash:
        module.__dict__[STASH_ATTR] = stash
    if wiring["input"] is not None:
        quantizer = module._modules[wiring["input"]]
        if is_active(quantizer):  # type: ignore[arg-type]
            args, kwargs = _quantize_first_tensor(args, kwargs, quantizer)  # type: ignore[arg-type]
    second = wiring.get("second_input")
    if second is not None and is_active(module._modules[second]):  # type: ignore[arg-type]
        _patch_linear_for_second_projection(module)
    return args, kwargs


def quant_post_hook(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> Any:
    """Put original weights back and quantize the output after ``module`` ran."""
    _restore_stash(module)
    _unpatch_linear(module)
    wiring = module.__dict__.get(WIRING_ATTR)
    if wiring is None or wiring.get("output") is None or output is None:
        return None
    quantizer = module._modules[wiring["output"]]
    if not is_active(quantizer):  # type: ignore[arg-type]
        return None
    if isinstance(output, torch.Tensor):
        return quantizer(output)
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return (quantizer(output[0]), *output[1:])
    return None


def _restore_stash(module: nn.Module) -> None:
    stash = module.__dict__.pop(STASH_ATTR, None)
    if stash:
        for tensor, original in stash.items():
            module._parameters[tensor] = original


# -- fused experts: the input of the second projection --------------------------------------


class _SecondProjectionLinear:
    """Stands in for ``torch.nn.functional.linear`` while a fused-experts module runs.

    The experts' forward calls ``F.linear`` once per projection and expert; the call whose
    weight lives in the ``down_proj`` storage gets its input quantized. Every other call goes
    straight through.
    """

    def __init__(self, module: nn.Module, original: Any) -> None:
        self.module = module
        self.original = original

    def __call__(self, input: torch.Tensor, weight: torch.Tensor, bias: Any = None) -> torch.Tensor:
        down = self.module._parameters["down_proj"]
        if (
            down is not None
            and weight.untyped_storage().data_ptr() == down.untyped_storage().data_ptr()
        ):
            input = self.module._modules["down_proj_input_quantizer"](input)
        return self.original(input, weight, bias)


def _patch_linear_for_second_projection(module: nn.Module) -> None:
    config = getattr(module, "config", None)
    implementation = getattr(config, "_experts_implementation", None)
    if implementation not in (None, "eager"):
        # Only the eager implementation calls F.linear per expert, exposing the input of the
        # second projection; batched kernels never materialise it where a hook can reach it.
        # Switch to eager for this call only (the post-hook switches back).
        module.__dict__[IMPLEMENTATION_STASH_ATTR] = implementation
        config._experts_implementation = "eager"  # type: ignore[union-attr]
    functional = torch.nn.functional
    functional.linear = _SecondProjectionLinear(module, functional.linear)  # type: ignore[assignment]


def _unpatch_linear(module: nn.Module) -> None:
    functional = torch.nn.functional
    current = functional.linear
    if isinstance(current, _SecondProjectionLinear) and current.module is module:
        functional.linear = current.original  # type: ignore[assignment]
    implementation = module.__dict__.pop(IMPLEMENTATION_STASH_ATTR, None)
    if implementation is not None:
        module.config._experts_implementation = implementation


# -- attention: the key/value states ----------------------------------------------------------

_KV_ATTENTION_MODULES: weakref.WeakSet[nn.Module] = weakref.WeakSet()
# (target object, key) -> (kind, original); kind "attr" patches a module-level function,
# kind "item" an entry of an AttentionInterface.
_ATTENTION_PATCHES: dict[tuple[int, str], tuple[Any, str, str, Any, bool]] = {}
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
        quantizers = module._modules
        if WIRING_ATTR in module.__dict__:
            query = quantizers["q_bmm_quantizer"](query)
            key = quantizers["k_bmm_quantizer"](key)
            value = quantizers["v_bmm_quantizer"](value)
        return self.original(module, query, key, value, *args, **kwargs)


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
            implementation in (None, "eager")
            or interface is None
            or implementation not in interface
        ):
            key = (id(modeling), "eager_attention_forward")
            if key in _ATTENTION_PATCHES:
                return
            original = getattr(modeling, "eager_attention_forward", None)
            if original is None or isinstance(original, KVQuantizedAttention):
                return
            modeling.eager_attention_forward = KVQuantizedAttention(original)
            _ATTENTION_PATCHES[key] = (modeling, "attr", "eager_attention_forward", original, True)
            return
        key = (id(interface), implementation)
        if key in _ATTENTION_PATCHES:
            return
        original = interface[implementation]
        if isinstance(original, KVQuantizedAttention):
            return
        local = getattr(interface, "_local_mapping", {})
        was_local = implementation in local
        interface[implementation] = KVQuantizedAttention(original)
        _ATTENTION_PATCHES[key] = (interface, "item", implementation, original, was_local)


def restore_attention_functions() -> None:
    """Undo every attention-function patch (done once no quantized attention module is left)."""
    with _ATTENTION_LOCK:
        for target, kind, key, original, was_local in _ATTENTION_PATCHES.values():
            if kind == "attr":
                setattr(target, key, original)
            elif was_local:
                target[key] = original
            else:
                del target[key]
        _ATTENTION_PATCHES.clear()
