"""The error for recipes that are valid but ask for something this runtime cannot do."""

from __future__ import annotations

from ..language import Diagnostic, RecipeError


class UnsupportedRecipeError(RecipeError):
    """The recipe is valid but asks for something this runtime cannot do."""

    code = "unsupported"


def unsupported(message: str, pointer: str, hint: str | None = None) -> Diagnostic:
    """One problem of a flat recipe, at a JSON pointer, for an :class:`UnsupportedRecipeError`."""
    return UnsupportedRecipeError.diagnostic(
        message, file="<flat recipe>", pointer=pointer, hint=hint
    )
