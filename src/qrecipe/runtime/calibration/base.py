"""What every calibration algorithm receives, returns and declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..placement import Slot
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
    """What calibration did: timings by phase and anything the user should know."""

    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    batches: int = 0


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

    def static_stages(self) -> tuple[Stages, Stages]:
        """The enabled stages that need an amax: (weights, activations)."""
        weights: Stages = []
        activations: Stages = []
        for slot, quantizer in self.placed:
            for stage in iter_stages(quantizer):
                if stage.enabled and stage.needs_calibration:
                    (weights if slot.tensor is not None else activations).append((slot, stage))
        return weights, activations


@dataclass(frozen=True)
class Algorithm:
    """A calibration method: its name in recipes, the options it accepts, and how it runs."""

    name: str
    options: Mapping[str, OptionRule]
    """Every option the method understands, with the rule its value must follow."""
    run: Callable[[Calibration], None]
    """Calibrates ``calibration.placed`` in place, recording into ``calibration.result``."""
