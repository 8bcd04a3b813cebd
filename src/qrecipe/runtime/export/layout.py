"""A checkpoint's content as the formats read it back: packed layers, KV scales, the rest.

Each format module turns its own tensor names into this one description (tensors of packed
layers by ModelOpt's names: ``weight``, ``weight_scale``, ``weight_scale_2``, ``input_scale``,
``pre_quant_scale``), which :func:`qrecipe.runtime.load` builds a model from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from .schemes import ActivationKind, Scheme


@dataclass
class PackedLayer:
    scheme: Scheme
    tensors: dict[str, Tensor]


@dataclass
class CheckpointLayout:
    layers: dict[str, PackedLayer] = field(default_factory=dict)
    """Quantized linear layers by module name (experts one per expert and projection)."""
    kv: dict[str, tuple[ActivationKind, Tensor, Tensor]] = field(default_factory=dict)
    """Attention module -> (format, k_scale, v_scale)."""
    plain: dict[str, Tensor] = field(default_factory=dict)
    """Every other tensor, by its name in the model."""
