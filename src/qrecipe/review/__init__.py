"""Reviewing recipes against models.

This layer sits between the runtime and the command line. Only :func:`load_model`
(``--model``) builds a model, on the ``meta`` device, with torch and transformers, and plans
its quantizers with the runtime's own placement so that names are exactly those ``apply``
would create; everything else works without torch.
"""

from .model import ModelLoadError, load_model
from .quantizers import Decided, ModelSkeleton, QuantizerSlot, QuantizerState

__all__ = [
    "Decided",
    "ModelLoadError",
    "ModelSkeleton",
    "QuantizerSlot",
    "QuantizerState",
    "load_model",
]
