"""qrecipe: write, check, share and apply model-quantization recipes.

Validation and resolution never import torch; the runtime lives in :mod:`qrecipe.runtime` and
needs the ``[runtime]`` extra.
"""

from .validator.api import (
    RecipeDeprecationWarning,
    RecipeInfo,
    fingerprint,
    list_recipes,
    load,
    resolve,
    schema,
    validate,
)
from .validator.canonical import canonical_bytes, pretty_json
from .validator.errors import (
    Diagnostic,
    DuplicateKeyError,
    FingerprintMismatchError,
    ImportCycleError,
    ImportKindError,
    ImportNotFoundError,
    PathEscapeError,
    RecipeError,
    RecipeLimitError,
    RecipeNotFoundError,
    RecipeSemanticError,
    RecipeSyntaxError,
    SchemaValidationError,
)
from .validator.flat import load_flat

__version__ = "0.1.0"

__all__ = [
    "Diagnostic",
    "DuplicateKeyError",
    "FingerprintMismatchError",
    "ImportCycleError",
    "ImportKindError",
    "ImportNotFoundError",
    "PathEscapeError",
    "RecipeDeprecationWarning",
    "RecipeError",
    "RecipeInfo",
    "RecipeLimitError",
    "RecipeNotFoundError",
    "RecipeSemanticError",
    "RecipeSyntaxError",
    "SchemaValidationError",
    "__version__",
    "canonical_bytes",
    "fingerprint",
    "list_recipes",
    "load",
    "load_flat",
    "pretty_json",
    "resolve",
    "schema",
    "validate",
]
