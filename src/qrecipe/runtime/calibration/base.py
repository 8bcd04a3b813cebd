"""What every calibration algorithm receives, returns and declares."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..placement import Slot, Wiring
from ..quantizer import AnyQuantizer, TensorQuantizer, iter_stages

ForwardLoop = Callable[[nn.Module], Any]
"""Runs calibration data through the model: ``forward_loop(model)``."""

Placed = list[tuple[Slot, AnyQuantizer]]
"""Every placed quantizer with its slot, in plan order."""

Stages = list[tuple[Slot, TensorQuantizer]]
"""Single-stage quantizers with the slot of the quantizer they belong to."""

MIN_PROGRESS_ITEMS = 64
"""Per-quantizer progress bars are shown from this many quantizers on: below it the work ends
before a bar says anything."""

OptionRule = Callable[[str, Any], "str | None"]
"""Why an option's value is refused (``rule(option, value)``), or None when it is accepted."""


@dataclass
class CalibrationResult:
    """What calibration did: timings by phase, per-quantizer results and warnings."""

    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    batches: int = 0
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the algorithm chose for each quantizer (by name): AWQ's alpha, clip ratios, GPTQ's
    error, the MSE multipliers, ... (see the report)."""

    def record(self, name: str, **values: Any) -> None:
        """Add algorithm results for the quantizer ``name``."""
        self.details.setdefault(name, {}).update(values)

    def add_time(self, phase: str, seconds: float) -> None:
        """Accumulate ``seconds`` into ``timings[phase]`` (phases run once per layer add up)."""
        self.timings[phase] = self.timings.get(phase, 0.0) + seconds


@dataclass
class LinearLayer:
    """A linear layer with its input and weight quantizers: what AWQ, SmoothQuant and GPTQ move
    scales and rounding error through."""

    name: str
    module: nn.Linear
    input: TensorQuantizer
    input_name: str
    weight: AnyQuantizer
    weight_name: str

    @property
    def weight_tensor(self) -> torch.Tensor:
        """The layer's weight parameter (``out_features x in_features``)."""
        return self.module.weight


@dataclass
class Calibration:
    """One calibration run: the placed quantizers, the recipe's algorithm object and the data."""

    model: nn.Module
    placed: Placed
    algorithm: dict[str, Any]
    """The recipe's ``algorithm`` object: ``method`` and the method's options."""
    forward_loop: ForwardLoop | None
    progress: bool
    result: CalibrationResult = field(default_factory=CalibrationResult)
    changed_parameters: weakref.WeakValueDictionary[int, torch.Tensor] = field(
        default_factory=weakref.WeakValueDictionary
    )
    """Parameters whose original is already kept for removal (by id), shared across layers.

    Weak: an offloaded layer's parameters are new tensors each time they are loaded, and a
    freed one's id can come back for another parameter, which must not count as kept."""
    recipe_fingerprint: str = ""
    """The flat recipe's fingerprint (what a layer-by-layer checkpoint belongs to)."""

    def option(self, name: str, default: Any) -> Any:
        """The algorithm option ``name``; ``default`` when it is absent or null."""
        value = self.algorithm.get(name)
        return default if value is None else value

    @property
    def distributed_sync(self) -> bool:
        """Whether statistics are reduced across the processes of a torch.distributed job."""
        return bool(self.option("distributed_sync", True))

    def static_stages(self) -> tuple[Stages, Stages]:
        """The enabled stages that need an amax: (weights, activations)."""
        weights: Stages = []
        activations: Stages = []
        for slot, quantizer in self.placed:
            for stage in iter_stages(quantizer):
                if stage.enabled and stage.needs_calibration:
                    (weights if slot.tensor is not None else activations).append((slot, stage))
        return weights, activations

    def linear_layers(self) -> list[LinearLayer]:
        """The ``nn.Linear`` layers with a weight and a single-stage input quantizer, in order.

        As in the reference, only linear layers (2-D weights) take part in the algorithms that
        move scales or rounding error between activations and weights.
        """
        by_owner: dict[str, dict[str, tuple[Slot, AnyQuantizer]]] = {}
        for slot, quantizer in self.placed:
            by_owner.setdefault(slot.owner_name, {})[slot.role] = (slot, quantizer)
        layers = []
        for owner_name, roles in by_owner.items():
            if "weight" not in roles or "input" not in roles:
                continue
            weight_slot, weight = roles["weight"]
            input_slot, input_quantizer = roles["input"]
            module = weight_slot.parent
            if not isinstance(module, nn.Linear) or weight_slot.tensor != "weight":
                continue
            if not isinstance(input_quantizer, TensorQuantizer) or module.weight.dim() != 2:
                continue
            layers.append(
                LinearLayer(
                    owner_name,
                    module,
                    input_quantizer,
                    input_slot.name,
                    weight,
                    weight_slot.name,
                )
            )
        return layers

    def replace_weight(self, module: nn.Module, value: torch.Tensor, name: str = "weight") -> None:
        """Write ``value`` into parameter ``name`` of ``module`` in place, keeping the original.

        The original is kept (once per parameter, on the CPU) on the module's wiring, so that
        removing the quantizers puts it back bit for bit.
        """
        parameter = module._parameters[name]
        if parameter is None:
            raise ValueError(f"{type(module).__name__}.{name} is None")
        if id(parameter) not in self.changed_parameters:
            wiring = Wiring.of(module)
            if wiring is None:
                raise ValueError(f"{type(module).__name__} carries no quantizers")
            wiring.keep_original(module, name)
            self.changed_parameters[id(parameter)] = parameter
        with torch.no_grad():
            parameter.copy_(value.to(dtype=parameter.dtype, device=parameter.device))

    def restricted(
        self, model: nn.Module, placed: Placed, forward_loop: ForwardLoop | None
    ) -> Calibration:
        """The same algorithm over part of the model (one decoder layer), sharing the result."""
        return Calibration(
            model,
            placed,
            self.algorithm,
            forward_loop,
            progress=False,
            result=self.result,
            changed_parameters=self.changed_parameters,
            recipe_fingerprint=self.recipe_fingerprint,
        )


@dataclass(frozen=True)
class Algorithm:
    """A calibration method: its name in recipes, the options it accepts, and how it runs."""

    name: str
    options: Mapping[str, OptionRule]
    """Every option the method understands, with the rule its value must follow."""
    run: Callable[[Calibration], None]
    """Calibrates ``calibration.placed`` in place, recording into ``calibration.result``."""
    mutates_weights: bool = False
    """Whether it changes weights (AWQ, SmoothQuant, GPTQ): such methods refuse the layer-by-
    layer mode that leaves weights untouched (``calib_mutates_weights: false``)."""
    qdq_between_layers: bool = False
    """Layer by layer, whether each layer's quantized output feeds the next by default (GPTQ)."""
