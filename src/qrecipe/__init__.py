"""qrecipe: write, check, share and apply model-quantization recipes.

The names here are the recipe language's public API (:mod:`qrecipe.language`): load, resolve,
validate, fingerprint and list recipes, and the errors they raise. Validation and resolution
never import torch; the runtime lives in :mod:`qrecipe.runtime` and needs the ``[runtime]``
extra.
"""

# The package's API is exactly the language's, re-exported whole so the two never drift.
from .language import *  # noqa: F403
from .language import __all__ as _LANGUAGE_API

__version__ = "0.1.0"

__all__ = [*_LANGUAGE_API, "__version__"]
