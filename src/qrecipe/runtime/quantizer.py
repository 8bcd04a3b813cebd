"""The quantizer modules that :func:`qrecipe.runtime.apply` places in a model.

A :class:`TensorQuantizer` holds one quantizer-attribute object (the nineteen keys of the flat
form), an enable flag (``attributes["enable"]``) and, once calibrated, ``amax`` as a buffer
named ``_amax`` so that ``state_dict()`` carries it. Called on a tensor it returns the
fake-quantized tensor (in the tensor's dtype), or the tensor itself when disabled.

Calibration algorithms may leave two more buffers: ``_pre_quant_scale`` (AWQ, SmoothQuant: a
per-channel factor every input is multiplied by first, even when the quantizer is disabled, as
in the reference) and ``_global_amax`` (static NVFP4: the per-tensor amax, when it is not the
largest block amax).

A :class:`SequentialQuantizer` is what a ``cfg`` list turns a quantizer into: several
:class:`TensorQuantizer` stages applied one after another.

The numerics themselves live in :mod:`qrecipe.runtime.kernels`; this module only decides when
and with which ``amax`` to call them.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .attributes import default_attributes
from .kernels import QuantFormat, fake_quant, fake_quant_, reduce_amax
from .kernels.table import E4M3_MAX

# A process-wide counter gives every configuration change a new token, so that caches keyed
# on a quantizer's state (see placement/weights.py) never confuse two states, even across instances.
_state_counter = itertools.count(1)

Collector = Callable[["TensorQuantizer", torch.Tensor], None]


class TensorQuantizer(nn.Module):
    """One quantizer: attributes, enable flag, calibrated ``amax`` (buffer ``_amax``)."""

    _amax: torch.Tensor | None
    _pre_quant_scale: torch.Tensor | None
    _global_amax: torch.Tensor | None
    cache_weights: bool = False  # the default for quantizers saved before the attribute existed

    def __init__(
        self,
        attributes: dict[str, Any] | None = None,
        backend: str = "auto",
        cache_weights: bool = False,
    ) -> None:
        super().__init__()
        self.attributes: dict[str, Any] = (
            default_attributes() if attributes is None else copy.deepcopy(attributes)
        )
        self.backend = backend
        # Whether a weight quantizer keeps its fake-quantized weight between forward passes
        # (under no_grad, until the weight or the quantizer changes): faster, one more copy of
        # the quantized weights in memory.
        self.cache_weights = cache_weights
        self.register_buffer("_amax", None)
        self.register_buffer("_pre_quant_scale", None)
        self.register_buffer("_global_amax", None)
        self._format: QuantFormat | None = None
        self._collector: Collector | None = None
        self._state = next(_state_counter)
        self._apply_constant_amax()

    # -- configuration -------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the quantizer quantizes (the ``enable`` attribute)."""
        return bool(self.attributes["enable"])

    def set_enabled(self, enabled: bool) -> None:
        """Switch the quantizer on or off, keeping every other attribute."""
        self.attributes["enable"] = bool(enabled)
        self._touch()

    def configure(self, attributes: dict[str, Any]) -> None:
        """Replace all attributes (and forget any calibrated ``amax``)."""
        self.attributes = copy.deepcopy(attributes)
        self._format = None
        self._amax = None
        self._pre_quant_scale = None
        self._global_amax = None
        self._apply_constant_amax()
        self._touch()

    @property
    def fmt(self) -> QuantFormat:
        """The number format described by the attributes (built on first use)."""
        if self._format is None:
            self._format = QuantFormat.from_cfg(self.attributes)
        return self._format

    @property
    def needs_calibration(self) -> bool:
        """True when the format takes a static ``amax`` that calibration must provide.

        Dynamic NVFP4 counts: its block scales come from the data, but its per-tensor scale
        is calibrated and then fixed, as in the reference implementation and as deployed
        kernels expect (a fixed input scale).
        """
        if self.attributes["use_constant_amax"] or self.attributes["constant_amax"] is not None:
            return False
        return bool(self.fmt.needs_calibration or self.fmt.accepts_global_amax)

    def describe(self) -> str:
        """Short name of the format, or ``"unsupported"`` when the kernels cannot run it."""
        try:
            return self.fmt.describe()
        except Exception:
            return "unsupported"

    # -- amax ------------------------------------------------------------------------------

    @property
    def amax(self) -> torch.Tensor | None:
        """The calibrated (or constant) amax, or None."""
        return self._amax

    @amax.setter
    def amax(self, value: torch.Tensor | float | None) -> None:
        if value is None:
            self._amax = None
        else:
            tensor = torch.as_tensor(value, dtype=torch.float32).detach().clone()
            self._amax = tensor
        self._touch()

    @property
    def pre_quant_scale(self) -> torch.Tensor | None:
        """The per-channel factor inputs are multiplied by before quantizing, or None."""
        return self._pre_quant_scale

    @pre_quant_scale.setter
    def pre_quant_scale(self, value: torch.Tensor | None) -> None:
        self._pre_quant_scale = None if value is None else value.detach().clone()
        self._touch()

    @property
    def global_amax(self) -> torch.Tensor | None:
        """Static NVFP4: the per-tensor amax, when calibration fixed it apart from the blocks."""
        return self._global_amax

    @global_amax.setter
    def global_amax(self, value: torch.Tensor | None) -> None:
        if value is None:
            self._global_amax = None
        else:
            self._global_amax = torch.as_tensor(value, dtype=torch.float32).detach().clone()
        self._touch()

    def _apply_constant_amax(self) -> None:
        if self.attributes["use_constant_amax"]:
            # The reference pins these quantizers to the largest FP8 E4M3 value.
            self._amax = torch.tensor(E4M3_MAX)
        elif self.attributes["constant_amax"] is not None:
            self._amax = torch.tensor(float(self.attributes["constant_amax"]))

    def state_token(self) -> tuple[int, ...]:
        """Changes whenever the quantizer would produce different output for the same input."""
        versions = tuple(
            -1 if tensor is None else tensor._version
            for tensor in (self._amax, self._pre_quant_scale, self._global_amax)
        )
        return (self._state, *versions)

    def _touch(self) -> None:
        self._state = next(_state_counter)

    # -- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """Fake-quantize ``x`` (or pass it through when disabled or collecting statistics).

        ``in_place``: write the result into ``x`` when autograd does not need it, for tensors
        that nothing reads afterwards unquantized (a previous stage's result). Inputs of layers
        are never quantized in place: other layers read them too (the query, key and value
        projections share theirs) and residual connections add them back.
        """
        if self._pre_quant_scale is not None:
            # Applied before anything else, whether or not the quantizer quantizes, as in the
            # reference: the matching inverse factor is folded into the layer's weight.
            x = x * self._pre_quant_scale
            in_place = True  # the scaled tensor is this quantizer's own
        if self._collector is not None:
            # While calibrating, statistics are taken from unquantized tensors, as in the
            # reference: every layer sees the full-precision model.
            self._collector(self, x)
            return x
        if not self.enabled:
            return x
        fmt = self.fmt
        amax = self._amax
        if amax is None and fmt.needs_calibration:
            # Never calibrated (no data reached it): fall back to this tensor's own statistic.
            amax = reduce_amax(x.detach(), fmt)
        elif amax is not None and amax.device != x.device:
            amax = amax.to(x.device)
        global_amax = self._global_amax
        if global_amax is not None and global_amax.device != x.device:
            global_amax = global_amax.to(x.device)
        track_gradient = x.requires_grad and torch.is_grad_enabled()
        if in_place and not track_gradient:
            return fake_quant_(x, fmt, amax=amax, backend=self.backend, global_amax=global_amax)
        y = fake_quant(x, fmt, amax=amax, backend=self.backend, global_amax=global_amax)
        if track_gradient:
            # Straight-through estimator: forward value of y, gradient of the identity.
            y = x + (y - x).detach()
        return y

    def extra_repr(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        amax = "" if self._amax is None else f", amax shape={tuple(self._amax.shape)}"
        return f"{self.describe()}, {state}{amax}"

    # -- persistence -------------------------------------------------------------------------

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # An uncalibrated quantizer has no ``_amax`` buffer yet; create it so that loading a
        # calibrated checkpoint into a freshly quantized model restores amax.
        for name in ("_amax", "_pre_quant_scale", "_global_amax"):
            key = prefix + name
            if key in state_dict and getattr(self, name) is None:
                dtype = state_dict[key].dtype if name == "_pre_quant_scale" else torch.float32
                setattr(self, name, torch.empty_like(state_dict[key], dtype=dtype))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._touch()

    def __getstate__(self) -> dict[str, Any]:
        # torch leaves Module.__getstate__ unannotated; it returns a copy of __dict__.
        module_state: Callable[[], dict[str, Any]] = super().__getstate__
        state = module_state()
        # The format object is rebuilt from the attributes; collectors only live during apply().
        state["_format"] = None
        state["_collector"] = None
        return state


class SequentialQuantizer(nn.ModuleList):
    """Several quantizers applied in sequence (a ``cfg`` list), e.g. INT4 then FP8."""

    def __init__(self, stages: list[TensorQuantizer]) -> None:
        super().__init__(stages)

    @property
    def enabled(self) -> bool:
        """True when any stage quantizes."""
        return any(stage.enabled for stage in self.stages)

    @property
    def cache_weights(self) -> bool:
        """Whether the weight this sequence quantizes is kept between forward passes."""
        return all(stage.cache_weights for stage in self.stages)

    @cache_weights.setter
    def cache_weights(self, value: bool) -> None:
        for stage in self.stages:
            stage.cache_weights = value

    @property
    def stages(self) -> list[TensorQuantizer]:
        """The stages in application order."""
        return [stage for stage in self if isinstance(stage, TensorQuantizer)]

    def set_enabled(self, enabled: bool) -> None:
        """Switch every stage on or off."""
        for stage in self.stages:
            stage.set_enabled(enabled)

    def describe(self) -> str:
        """The stages' format names joined by arrows."""
        return " -> ".join(stage.describe() for stage in self.stages)

    @property
    def attributes(self) -> list[dict[str, Any]]:
        """One attribute object per stage."""
        return [stage.attributes for stage in self.stages]

    def state_token(self) -> tuple[tuple[int, ...], ...]:
        """Combined state of the stages (see :meth:`TensorQuantizer.state_token`)."""
        return tuple(stage.state_token() for stage in self.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply each stage in order; later stages quantize the earlier result in place."""
        original = x
        for stage in self.stages:
            x = stage(x, in_place=x is not original)
        return x


AnyQuantizer = TensorQuantizer | SequentialQuantizer


def make_quantizer(
    attributes: dict[str, Any] | list[dict[str, Any]],
    backend: str = "auto",
    cache_weights: bool = False,
) -> AnyQuantizer:
    """A quantizer for one attribute object, or a sequence for a list of them."""
    if isinstance(attributes, list):
        return SequentialQuantizer([TensorQuantizer(a, backend, cache_weights) for a in attributes])
    return TensorQuantizer(attributes, backend, cache_weights)


def iter_stages(quantizer: AnyQuantizer) -> list[TensorQuantizer]:
    """The single-stage quantizers a quantizer is made of."""
    if isinstance(quantizer, SequentialQuantizer):
        return quantizer.stages
    return [quantizer]
