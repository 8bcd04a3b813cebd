"""Reporters: how the results of a checking subcommand are shown, chosen with ``--format``.

A checking command (``validate``, ``check-flat``) turns each input into a :class:`Result` and
hands it to one reporter; the reporter alone decides the output's shape and stream.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..language import Diagnostic

FORMATS = ("text", "json", "github")
FORMAT_HELP = "text (default), json (machine-readable), github (workflow annotations)"


@dataclass
class Result:
    """What a check found in one input file.

    ``details`` are extra lines for people (a stale file's differences, say) shown under the
    diagnostics by the text and github reporters and kept as a list in JSON.
    """

    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.diagnostics

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": self.file,
            "valid": self.ok,
            "errors": [d.to_dict() for d in self.diagnostics],
        }
        if self.details:
            data["details"] = self.details
        if self.notices:
            data["notices"] = self.notices
        return data


class Reporter(Protocol):
    def result(self, result: Result) -> None:
        """Show one file's result (as it comes, so long runs show progress)."""

    def finish(self, results: list[Result], summary: str) -> None:
        """Show what the whole run found; ``summary`` is a sentence for people."""


class TextReporter:
    """Problems as ``file:line:column: message`` paragraphs on stderr, ``file: ok`` on stdout."""

    def __init__(self, *, show_ok: bool = True) -> None:
        self.show_ok = show_ok

    def result(self, result: Result) -> None:
        for notice in result.notices:
            print(f"{result.file}: notice: {notice}", file=sys.stderr)
        for diagnostic in result.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        for line in result.details:
            print(f"  {line}", file=sys.stderr)
        if result.ok and self.show_ok:
            print(f"{result.file}: ok")

    def finish(self, results: list[Result], summary: str) -> None:
        if any(not r.ok for r in results):
            print(summary, file=sys.stderr)


class JsonReporter:
    """One JSON document on stdout: ``{"valid": bool, "results": [...]}``."""

    def result(self, result: Result) -> None:
        pass

    def finish(self, results: list[Result], summary: str) -> None:
        document = {"valid": all(r.ok for r in results), "results": [r.to_dict() for r in results]}
        print(json.dumps(document, indent=2, ensure_ascii=False))


class GithubReporter:
    """GitHub Actions workflow commands, so problems show on the pull request's lines."""

    def result(self, result: Result) -> None:
        for notice in result.notices:
            print(f"{result.file}: notice: {notice}", file=sys.stderr)
        for diagnostic in result.diagnostics:
            properties = [f"file={diagnostic.file or result.file}"]
            if diagnostic.line:
                properties.append(f"line={diagnostic.line}")
            if diagnostic.column:
                properties.append(f"col={diagnostic.column}")
            message = diagnostic.message + (f" ({diagnostic.hint})" if diagnostic.hint else "")
            if result.details:
                message += "%0A" + "%0A".join(result.details)
            print(f"::error {','.join(properties)}::{message}")

    def finish(self, results: list[Result], summary: str) -> None:
        pass


def make_reporter(name: str, *, show_ok: bool = True) -> Reporter:
    """The reporter for ``--format NAME``."""
    if name == "json":
        return JsonReporter()
    if name == "github":
        return GithubReporter()
    return TextReporter(show_ok=show_ok)
