"""qrecipe: write, check, share and apply model-quantization recipes.

The names here are the recipe language's public API (:mod:`qrecipe.language`): load, resolve,
validate, fingerprint and list recipes, and the errors they raise. Validation and resolution
never import torch; the runtime lives in :mod:`qrecipe.runtime` and needs the ``[runtime]``
extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    # The package's API is exactly the language's, re-exported whole so the two never drift.
    from .language import *  # noqa: F403
    from .language import __all__ as _LANGUAGE_API

    __all__ = [*_LANGUAGE_API, "__version__"]
else:
    # ... and imported when first used, so that what needs none of it (``qrecipe --version``,
    # a subpackage) starts without it.

    def __getattr__(name: str) -> Any:
        language = importlib.import_module(".language", __name__)
        if name == "__all__":
            return [*language.__all__, "__version__"]
        if name not in language.__all__:
            raise AttributeError(f"module 'qrecipe' has no attribute {name!r}")
        value = getattr(language, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        language = importlib.import_module(".language", __name__)
        return sorted({*globals(), *language.__all__})
