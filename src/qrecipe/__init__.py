"""qrecipe: write, check, share and apply model-quantization recipes.

Validation and resolution never import torch; the runtime lives in :mod:`qrecipe.runtime` and
needs the ``[runtime]`` extra.
"""

from .language import (
    Diagnostic,
    DuplicateKeyError,
    FingerprintMismatchError,
    ImportCycleError,
    ImportKindError,
    ImportNotFoundError,
    PathEscapeError,
    RecipeDeprecationWarning,
    RecipeError,
    RecipeInfo,
    RecipeLimitError,
    RecipeNotFoundError,
    RecipeSemanticError,
    RecipeSyntaxError,
    SchemaValidationError,
    canonical_bytes,
    fingerprint,
    list_recipes,
    load,
    load_flat,
    pretty_json,
    resolve,
    schema,
    validate,
)

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
