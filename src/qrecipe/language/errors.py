"""The qrecipe exception hierarchy.

Every problem with a recipe is reported as a :class:`Diagnostic` (what, where) and raised inside a
:class:`RecipeError` subclass that can carry several diagnostics, so that a file with five
mistakes is reported once with all five.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem: a message and where it is."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    pointer: str = ""
    chain: tuple[str, ...] = ()
    code: str = "error"
    hint: str | None = None

    def location(self) -> str:
        """``file:line:col`` (as much of it as is known)."""
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self) -> str:
        """A one-paragraph, human-readable rendering."""
        text = f"{self.location()}: {self.message}"
        if self.pointer:
            text += f" (at {self.pointer})"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if len(self.chain) > 1:
            text += "\n  imported via: " + " -> ".join(self.chain)
        return text

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, used by ``--format json`` and the conformance vectors."""
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "chain": list(self.chain),
            "hint": self.hint,
        }


class RecipeError(Exception):
    """Base class of every error qrecipe reports about a recipe or flat document.

    Each subclass names its diagnostic code; build its diagnostics with :meth:`diagnostic`
    (or pass a message and where it is) so that the code always matches the error's type.
    """

    code = "error"

    def __init__(
        self,
        diagnostics: Diagnostic | str | Sequence[Diagnostic],
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        pointer: str = "",
        chain: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        if isinstance(diagnostics, str):
            diagnostics = self.diagnostic(
                diagnostics,
                file=file,
                line=line,
                column=column,
                pointer=pointer,
                chain=chain,
                hint=hint,
            )
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))

    @classmethod
    def diagnostic(
        cls,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        pointer: str = "",
        chain: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> Diagnostic:
        """A diagnostic carrying this error type's code."""
        return Diagnostic(
            message=message,
            file=file,
            line=line,
            column=column,
            pointer=pointer,
            chain=chain,
            code=cls.code,
            hint=hint,
        )

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]

    @property
    def file(self) -> str | None:
        return self.first.file

    @property
    def line(self) -> int | None:
        return self.first.line

    @property
    def column(self) -> int | None:
        return self.first.column

    @property
    def pointer(self) -> str:
        return self.first.pointer

    @property
    def chain(self) -> tuple[str, ...]:
        return self.first.chain


class RecipeSyntaxError(RecipeError):
    """The file is not valid YAML / JSON, or uses YAML features recipes do not allow."""

    code = "syntax"


class DuplicateKeyError(RecipeSyntaxError):
    """A mapping gives the same key twice."""

    code = "duplicate-key"


class RecipeLimitError(RecipeError):
    """The input exceeds a safety limit (size, nesting depth, alias expansion, import depth)."""

    code = "limit"


class SchemaValidationError(RecipeError):
    """The document does not conform to the published JSON Schema."""

    code = "schema"


class RecipeSemanticError(RecipeError):
    """The document is well-formed but breaks a rule the schema cannot express."""

    code = "semantic"


class RecipeNotFoundError(RecipeError):
    """A recipe name or path does not exist in any search root."""

    code = "not-found"


class ImportNotFoundError(RecipeNotFoundError):
    """An ``$import`` names something missing from ``imports:`` or a snippet that does not exist."""

    code = "import-not-found"


class ImportCycleError(RecipeError):
    """A snippet imports itself, directly or through other snippets."""

    code = "import-cycle"


class ImportKindError(RecipeError):
    """A snippet of the wrong kind is imported (e.g. a list snippet where a mapping is needed)."""

    code = "import-kind"


class PathEscapeError(RecipeError):
    """An import would read a file outside the search roots."""

    code = "path-escape"


class FingerprintMismatchError(RecipeError):
    """A flat document's fingerprint does not match its content."""

    code = "fingerprint"


class RecipeDeprecationWarning(FutureWarning):
    """A recipe or snippet was named by a name that has been renamed."""
