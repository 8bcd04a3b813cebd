"""The placement interface: what every kind of quantized module implements, and what it shares.

A :class:`Placement` is one kind of module that receives quantizers (linear-like layers,
attention modules, fused experts). It plans :class:`Slot` s for a module without changing it,
and installs quantizers into the slots, returning a :class:`Wiring`: the record of what it
changed (child modules added, hook handles), kept on the module so that removal undoes exactly
that and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from typing_extensions import Self

from ..attributes import default_attributes
from ..offloading import module_offload_hook, restore_in_store
from ..quantizer import AnyQuantizer, SequentialQuantizer, TensorQuantizer, iter_stages

# Owner attribute holding its Wiring; a plain attribute so that pickling the model keeps it.
WIRING_ATTR = "_qrecipe_wiring"

HookArgs = tuple[tuple[Any, ...], dict[str, Any]]

# The state of a quantizer no entry configures, unless its kind says otherwise.
_PER_TENSOR = default_attributes()


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
    """Attributes the quantizer has when no entry configures it (shared between slots and
    never changed: decisions start from a copy)."""
    expert: int | None = None
    """Expert index for per-expert weight quantizers of fused MoE modules."""
    tensor: str | None = None
    """Parameter a weight quantizer quantizes (calibrated straight from the parameter)."""
    transposed: bool = False
    """Per-expert weights stored as (in_features, out_features): quantized transposed."""

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

    def weight(self) -> torch.Tensor:
        """The unquantized tensor a weight quantizer quantizes, in its quantization layout."""
        parameter = None if self.tensor is None else self.parent._parameters.get(self.tensor)
        if parameter is None:
            raise ValueError(f"{self.name} does not quantize a parameter")
        weight = parameter.detach()
        if self.expert is None:
            return weight
        piece = weight[self.expert]
        return piece.transpose(-1, -2) if self.transposed else piece


@dataclass
class Owner:
    """A layer that receives quantizers, with the slots it gets and the kind that placed them."""

    name: str
    module: nn.Module
    placement: Placement
    slots: list[Slot] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``layer``, ``attention`` or ``experts``."""
        return self.placement.kind

    def add(
        self, attr: str, role: str, default: dict[str, Any] | None = None, **extra: Any
    ) -> None:
        """Plan one more quantizer, ``<owner>.<attr>``; its default state is 8-bit per tensor.

        ``extra``: the :class:`Slot` fields of weight quantizers (``tensor``, ``expert``, ...).
        """
        name = f"{self.name}.{attr}" if self.name else attr
        attributes = _PER_TENSOR if default is None else default
        self.slots.append(Slot(name, self.name, attr, role, self.module, attributes, **extra))


@dataclass(kw_only=True)
class Wiring:
    """What installing changed on one module: child modules added and hooks registered."""

    added: list[str] = field(default_factory=list)
    """Child modules added (quantizers, lists of per-expert quantizers), in order."""
    handles: list[RemovableHandle] = field(default_factory=list)
    """The handles of the hooks registered on the module."""
    originals: dict[str, torch.Tensor] = field(default_factory=dict)
    """Parameters a calibration algorithm changed (folded scales, GPTQ), as they were before
    (a copy on the CPU), by parameter name: removal puts them back bit for bit."""

    @classmethod
    def of(cls, module: nn.Module) -> Self | None:
        """The wiring of ``module`` when it is one of this class, else None."""
        wiring = module.__dict__.get(WIRING_ATTR)
        return wiring if isinstance(wiring, cls) else None

    def attach(self, module: nn.Module, attr: str, child: nn.Module) -> None:
        """Add ``child`` to ``module`` as ``attr`` and remember to take it out again."""
        module.add_module(attr, child)
        self.added.append(attr)

    def keep_original(self, module: nn.Module, name: str) -> None:
        """Remember parameter ``name`` of ``module`` as it is now, unless already remembered."""
        if name not in self.originals:
            parameter = module._parameters[name]
            if parameter is None:
                raise ValueError(f"{type(module).__name__}.{name} is None")
            self.originals[name] = parameter.detach().to("cpu", copy=True)

    def remove(self, module: nn.Module) -> None:
        """Undo the installation on ``module``: hooks first, then the added children."""
        for handle in self.handles:
            handle.remove()
        for attr in self.added:
            module._modules.pop(attr, None)
        with torch.no_grad():
            for name, original in self.originals.items():
                parameter = module._parameters[name]
                if parameter is not None and parameter.device.type != "meta":
                    parameter.copy_(original)
        hook = module_offload_hook(module)
        if hook is not None:
            # Offloaded weights are loaded from accelerate's store at each call: the changed
            # values written there during calibration must give way to the originals.
            restore_in_store(hook, self.originals)
        self.originals.clear()


class Placement(ABC):
    """One kind of module that gets quantizers: which slots it has and how they are wired."""

    kind: ClassVar[str]

    @abstractmethod
    def plan(self, name: str, module: nn.Module) -> Owner | None:
        """The slots of ``module`` (called ``name`` in the model), or None when it has none.

        Planning only looks at the module; it must not change it.
        """

    @abstractmethod
    def install(self, owner: Owner, quantizers: Mapping[str, AnyQuantizer]) -> Wiring:
        """Attach the quantizers (keyed by slot name) to the owner and hook them up."""

    def after_removal(self) -> None:  # noqa: B027 - optional, most kinds share nothing
        """Called once every owner of a removal is undone: release state shared by modules."""


def quantizer_at(module: nn.Module, attr: str) -> AnyQuantizer:
    """The quantizer installed as ``attr`` of ``module``."""
    quantizer = module._modules.get(attr)
    if not isinstance(quantizer, (TensorQuantizer, SequentialQuantizer)):
        raise TypeError(f"{type(module).__name__}.{attr} is not a quantizer: {quantizer!r}")
    return quantizer


def is_active(quantizer: AnyQuantizer) -> bool:
    """Whether calling the quantizer could change or observe anything."""
    return any(
        s.enabled or s._collector is not None or s._pre_quant_scale is not None
        for s in iter_stages(quantizer)
    )


def quantize_input(
    module: nn.Module, attr: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> HookArgs:
    """A call's arguments with its input (the first tensor) quantized by quantizer ``attr``.

    The input is the first positional argument when it is a tensor, else the first of the
    usual keyword arguments that is one.
    """
    quantizer = quantizer_at(module, attr)
    if not is_active(quantizer):
        return args, kwargs
    if args and isinstance(args[0], torch.Tensor):
        return (quantizer(args[0]), *args[1:]), kwargs
    for key in ("input", "hidden_states", "x"):
        if isinstance(kwargs.get(key), torch.Tensor):
            return args, {**kwargs, key: quantizer(kwargs[key])}
    return args, kwargs
