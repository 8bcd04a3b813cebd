"""Reporters: how the results of a checking subcommand are shown, chosen with ``--format``.

A checking command (``validate``, ``check-flat``, ``lint``) turns each input into a
:class:`Result` and hands it to one reporter; the reporter alone decides the output's shape
and stream. A command whose diagnostics come from named rules (``lint``) passes the rules'
descriptions, so that reporters can show each finding's rule and level.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import __version__
from ..language import Diagnostic

FORMATS = ("text", "json", "github")
FORMAT_HELP = "text (default), json (machine-readable), github (workflow annotations)"
RULE_FORMATS = (*FORMATS, "sarif")
RULE_FORMAT_HELP = FORMAT_HELP.removesuffix(")") + "), sarif (SARIF 2.1.0, for code scanning)"

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/qrecipe/qrecipe"


class RuleInfo(Protocol):
    """What reporters need to know of the rule behind a diagnostic's ``code``."""

    @property
    def id(self) -> str: ...

    @property
    def level(self) -> str:
        """``error`` or ``warning``."""

    @property
    def summary(self) -> str: ...


Rules = Mapping[str, RuleInfo]


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


def level_of(diagnostic: Diagnostic, rules: Rules | None) -> str:
    rule = rules.get(diagnostic.code) if rules else None
    return rule.level if rule is not None else "error"


class TextReporter:
    """Problems as ``file:line:column: message`` paragraphs on stderr, ``file: ok`` on stdout.

    With rules, the first line of each problem ends with its level and rule id.
    """

    def __init__(self, *, show_ok: bool = True, rules: Rules | None = None) -> None:
        self.show_ok = show_ok
        self.rules = rules

    def result(self, result: Result) -> None:
        for notice in result.notices:
            print(f"{result.file}: notice: {notice}", file=sys.stderr)
        for diagnostic in result.diagnostics:
            text = diagnostic.format()
            if self.rules is not None:
                first, newline, rest = text.partition("\n")
                level = level_of(diagnostic, self.rules)
                text = f"{first} [{level}: {diagnostic.code}]{newline}{rest}"
            print(text, file=sys.stderr)
        for line in result.details:
            print(f"  {line}", file=sys.stderr)
        if result.ok and self.show_ok:
            print(f"{result.file}: ok")

    def finish(self, results: list[Result], summary: str) -> None:
        if any(not r.ok for r in results):
            print(summary, file=sys.stderr)


class JsonReporter:
    """One JSON document on stdout: ``{"valid": bool, "results": [...]}``.

    With rules, each error also has its ``level``.
    """

    def __init__(self, *, rules: Rules | None = None) -> None:
        self.rules = rules

    def result(self, result: Result) -> None:
        pass

    def finish(self, results: list[Result], summary: str) -> None:
        shown = [r.to_dict() for r in results]
        if self.rules is not None:
            for data, result in zip(shown, results, strict=True):
                for error, diagnostic in zip(data["errors"], result.diagnostics, strict=True):
                    error["level"] = level_of(diagnostic, self.rules)
        document = {"valid": all(r.ok for r in results), "results": shown}
        print(json.dumps(document, indent=2, ensure_ascii=False))


class GithubReporter:
    """GitHub Actions workflow commands, so problems show on the pull request's lines.

    With rules, each annotation has the rule's level and its id as title.
    """

    def __init__(self, *, rules: Rules | None = None) -> None:
        self.rules = rules

    def result(self, result: Result) -> None:
        for notice in result.notices:
            print(f"{result.file}: notice: {notice}", file=sys.stderr)
        for diagnostic in result.diagnostics:
            properties = [f"file={diagnostic.file or result.file}"]
            if diagnostic.line:
                properties.append(f"line={diagnostic.line}")
            if diagnostic.column:
                properties.append(f"col={diagnostic.column}")
            if self.rules is not None:
                properties.append(f"title=qrecipe {diagnostic.code}")
            message = diagnostic.message + (f" ({diagnostic.hint})" if diagnostic.hint else "")
            if result.details:
                message += "%0A" + "%0A".join(result.details)
            print(f"::{level_of(diagnostic, self.rules)} {','.join(properties)}::{message}")

    def finish(self, results: list[Result], summary: str) -> None:
        pass


class SarifReporter:
    """One SARIF 2.1.0 log on stdout, for GitHub code scanning and other SARIF viewers.

    Every rule is described in the tool's ``rules``, each problem is a result pointing at
    ``file``, ``line`` and ``column`` (counted in characters); hints, import chains and
    detail lines follow the message on lines of their own.
    """

    def __init__(self, *, rules: Rules | None = None) -> None:
        self.rules = rules

    def result(self, result: Result) -> None:
        for notice in result.notices:
            print(f"{result.file}: notice: {notice}", file=sys.stderr)

    def finish(self, results: list[Result], summary: str) -> None:
        rule_ids: list[str] = list(self.rules or {})
        for result in results:
            for diagnostic in result.diagnostics:
                if diagnostic.code not in rule_ids:
                    rule_ids.append(diagnostic.code)
        findings = [
            self._result(diagnostic, result, rule_ids.index(diagnostic.code))
            for result in results
            for diagnostic in result.diagnostics
        ]
        log = {
            "$schema": SARIF_SCHEMA,
            "version": SARIF_VERSION,
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "qrecipe",
                            "version": __version__,
                            "informationUri": INFORMATION_URI,
                            "rules": [self._rule(rule_id) for rule_id in rule_ids],
                        }
                    },
                    "columnKind": "unicodeCodePoints",
                    "results": findings,
                }
            ],
        }
        print(json.dumps(log, indent=2, ensure_ascii=False))

    def _rule(self, rule_id: str) -> dict[str, Any]:
        rule = (self.rules or {}).get(rule_id)
        summary = rule.summary if rule is not None else f"qrecipe reports a {rule_id} problem"
        return {
            "id": rule_id,
            "shortDescription": {"text": summary},
            "defaultConfiguration": {"level": rule.level if rule is not None else "error"},
        }

    def _result(self, diagnostic: Diagnostic, result: Result, index: int) -> dict[str, Any]:
        lines = [diagnostic.message]
        if diagnostic.hint:
            lines.append(f"hint: {diagnostic.hint}")
        if len(diagnostic.chain) > 1:
            lines.append("imported via: " + " -> ".join(diagnostic.chain))
        lines += result.details
        location: dict[str, Any] = {
            "artifactLocation": {"uri": artifact_uri(diagnostic.file or result.file)}
        }
        if diagnostic.line:
            region: dict[str, int] = {"startLine": diagnostic.line}
            if diagnostic.column:
                region["startColumn"] = diagnostic.column
            location["region"] = region
        return {
            "ruleId": diagnostic.code,
            "ruleIndex": index,
            "level": level_of(diagnostic, self.rules),
            "message": {"text": "\n".join(lines)},
            "locations": [{"physicalLocation": location}],
        }


def artifact_uri(file: str) -> str:
    """A file as SARIF wants it: a URI reference, relative paths kept relative.

    Messages name a file under a search root ``ROOT:path``; SARIF viewers need the path
    itself, ``ROOT/path``. Built-in library files keep their ``builtin:`` scheme.
    """
    root, colon, rest = file.partition(":")
    if colon and root != "builtin" and os.path.isdir(root):
        file = os.path.join(root, rest)
    return urllib.parse.quote(file.replace("\\", "/"), safe="/:")


def make_reporter(name: str, *, show_ok: bool = True, rules: Rules | None = None) -> Reporter:
    """The reporter for ``--format NAME``; ``rules`` describes the codes of rule-based checks."""
    if name == "json":
        return JsonReporter(rules=rules)
    if name == "github":
        return GithubReporter(rules=rules)
    if name == "sarif":
        return SarifReporter(rules=rules)
    return TextReporter(show_ok=show_ok, rules=rules)
