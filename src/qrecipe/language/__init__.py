"""The recipe language: load, resolve, validate, canonicalize and fingerprint recipes.

This package is the core every other part of qrecipe builds on. The command line, the
pre-commit checks and the runtime use only the names exported here; the modules inside are
private and may change. It never imports torch.
"""

from .api import (
    RecipeInfo,
    expand,
    fingerprint,
    list_recipes,
    load,
    resolve,
    schema,
    validate,
)
from .canonical import canonical_bytes, pretty_json
from .errors import (
    Diagnostic,
    DuplicateKeyError,
    FingerprintMismatchError,
    ImportCycleError,
    ImportKindError,
    ImportNotFoundError,
    PathEscapeError,
    RecipeDeprecationWarning,
    RecipeError,
    RecipeLimitError,
    RecipeNotFoundError,
    RecipeSemanticError,
    RecipeSyntaxError,
    SchemaValidationError,
)
from .flat import CHECKPOINT_RECIPE, is_flat_file, load_flat
from .yamlio import join_pointer

__all__ = [
    "CHECKPOINT_RECIPE",
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
    "canonical_bytes",
    "expand",
    "fingerprint",
    "is_flat_file",
    "join_pointer",
    "list_recipes",
    "load",
    "load_flat",
    "pretty_json",
    "resolve",
    "schema",
    "validate",
]
