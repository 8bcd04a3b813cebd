"""Where quantizers go, what they are called, and how they are wired into a model.

Quantizer names follow the reference implementation, so that a recipe's patterns select the
same tensors here as there. Each kind of module that gets quantizers is one
:class:`~.base.Placement`, in a module of its own:

* :mod:`.layers`: linear and convolution layers, embeddings, normalisation and pooling
  (``<layer>.weight_quantizer``, ``.input_quantizer``, ``.output_quantizer``);
* :mod:`.attention`: ``transformers`` attention modules, whose query, key and value states are
  quantized where they enter the attention function (``<attn>.k_bmm_quantizer``, ...);
* :mod:`.experts`: fused mixture-of-experts modules, with one weight quantizer per expert
  (``<experts>.down_proj_weight_quantizers.<i>``, ...).

:mod:`.planner` runs them over a model: :func:`plan` looks at it and changes nothing,
:func:`install` attaches the quantizers and registers hooks, :func:`remove_quantizers` undoes
exactly that with the hook handles and the record (:class:`~.base.Wiring`) each module keeps.
Quantizers are child modules of the layer they serve; hooks are plain module-level functions,
so that quantized models stay picklable. Nothing else about the model changes, which is what
lets removal restore it exactly. A new kind of module is a new :class:`~.base.Placement`
added to :data:`.planner.PLACEMENTS`.
"""

from __future__ import annotations

from .base import Owner, Placement, Slot, Wiring
from .planner import PLACEMENTS, has_quantizers, install, iter_quantizers, plan, remove_quantizers

__all__ = [
    "PLACEMENTS",
    "Owner",
    "Placement",
    "Slot",
    "Wiring",
    "has_quantizers",
    "install",
    "iter_quantizers",
    "plan",
    "remove_quantizers",
]
