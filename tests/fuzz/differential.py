"""The differential fuzzer: generated recipe trees, run by both implementations, compared.

A case fails on any crash (a traceback, a signal, an uncaught JavaScript exception, a hang),
any difference of exit code or output bytes of ``qrecipe resolve`` and ``qrecipe validate``,
any difference of the first diagnostic's code, file, line, column or JSON pointer (validate
and resolve), any difference in what a file reads as (documents, positions, or the first
problem with its message), and any text qrecipe reads differently from PyYAML (or ``json``).

``make test`` runs a seeded, bounded number of cases (tests/test_fuzz.py); ``make fuzz`` runs
many more (``python -m fuzz --cases N``). A failing case is shrunk by Hypothesis and written
out in the conformance-vector layout, to be reviewed and added to tests/vectors/cases.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from .engines import COMPARED, JavaScriptEngine, PythonEngine
from .recipes import Case, cases

FAILURES = Path(__file__).resolve().parents[2] / "build" / "fuzz-failures"


@dataclass
class Statistics:
    """What a run saw, for the report."""

    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    python_seconds: list[float] = field(default_factory=list)
    javascript_seconds: list[float] = field(default_factory=list)
    python_rss_mb: float = 0.0
    slowest: tuple[float, str] = (0.0, "")
    # Not a failure (messages may be worded differently), but worth knowing.
    messages_differ: int = 0
    message_examples: list[dict[str, Any]] = field(default_factory=list)

    def record(self, case: Case, python: dict[str, Any], javascript: dict[str, Any]) -> None:
        self.cases += 1
        first = python.get("validateDiagnostics") or []
        self.outcomes["valid" if not first else first[0]["code"]] += 1
        if python.get("resolve", {}).get("status") == 0:
            self.outcomes["resolved"] += 1
        self.python_seconds.append(python["seconds"])
        self.javascript_seconds.append(javascript["seconds"])
        self.python_rss_mb = max(self.python_rss_mb, python.get("rss_mb", 0.0))
        slowest = max(python["seconds"], javascript["seconds"])
        if slowest > self.slowest[0]:
            self.slowest = (slowest, case.target)
        theirs = javascript.get("validateDiagnostics") or []
        if (
            first
            and theirs
            and (first[0]["message"], first[0]["hint"])
            != (
                theirs[0]["message"],
                theirs[0]["hint"],
            )
        ):
            self.messages_differ += 1
            if len(self.message_examples) < 20:
                self.message_examples.append(
                    {
                        "code": first[0]["code"],
                        "python": [first[0]["message"], first[0]["hint"]],
                        "javascript": [theirs[0]["message"], theirs[0]["hint"]],
                    }
                )

    def report(self) -> dict[str, Any]:
        def summary(values: list[float]) -> dict[str, float]:
            if not values:
                return {}
            ordered = sorted(values)
            return {
                "median_ms": round(statistics.median(ordered) * 1000, 2),
                "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
                "max_ms": round(ordered[-1] * 1000, 2),
            }

        return {
            "cases": self.cases,
            "outcomes": dict(self.outcomes.most_common()),
            "python_per_case": summary(self.python_seconds),
            "javascript_per_case": summary(self.javascript_seconds),
            "python_max_rss_mb": round(self.python_rss_mb, 1),
            "slowest_case_ms": round(self.slowest[0] * 1000, 1),
            "first_message_or_hint_differs": self.messages_differ,
            "message_examples": self.message_examples,
        }


def write_case(case: Case, root: Path) -> Path:
    """Write ``case`` under ``root``; returns the case directory (the working directory)."""
    work = root / "case"
    work.mkdir(parents=True)
    for directory in case.directories:
        (work / directory).mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        file = work / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    for name, size in case.sparse.items():
        file = work / name
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "wb") as handle:
            handle.truncate(size)
    for name in case.fifos:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(work / name)
    for name, target in case.links.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, work / name)
    return work


def readable_files(case: Case, work: Path) -> list[str]:
    """The case's regular YAML and JSON files under its directory, read one by one too."""
    names = []
    for name in sorted(case.files):
        file = work / name
        if name.startswith("../") or not name.endswith((".yaml", ".yml", ".json")):
            continue
        if file.is_file() and not file.is_symlink() and file.stat().st_size <= (2 << 20):
            names.append(name)
    return names


def differences(python: dict[str, Any], javascript: dict[str, Any]) -> list[str]:
    """Every way the two outcomes disagree (empty when they agree)."""
    found = []
    for side, answer in (("python", python), ("javascript", javascript)):
        if "crash" in answer:
            found.append(f"{side} crashed: {answer['crash']}")
    if found:
        return found
    for command in ("resolve", "validate"):
        ours, theirs = python[command], javascript[command]
        if ours["status"] != theirs["status"]:
            found.append(f"{command}: exit status {ours['status']} (python) != {theirs['status']}")
        if ours["stdout"] != theirs["stdout"]:
            found.append(
                f"{command}: output differs\n  python: {base64.b64decode(ours['stdout'])[:600]!r}"
                f"\n  javascript: {base64.b64decode(theirs['stdout'])[:600]!r}"
            )
    for kind in ("validateDiagnostics", "resolveDiagnostics"):
        ours, theirs = python[kind][:1], javascript[kind][:1]
        if [d["code"] for d in ours] != [d["code"] for d in theirs] or any(
            a[key] != b[key] for a, b in zip(ours, theirs, strict=False) for key in COMPARED
        ):
            found.append(
                f"{kind}: first diagnostic differs\n  python: {ours}\n  javascript: {theirs}"
            )
    for name, ours in python["parse"].items():
        theirs = javascript["parse"].get(name)
        if ours != theirs:
            found.append(f"{name} reads differently\n  python: {ours}\n  javascript: {theirs}")
    for name, problem in python.get("reference", {}).items():
        found.append(f"{name}: {problem}")
    return found


class Fuzzer:
    """Runs cases through both engines, keeping statistics."""

    def __init__(self) -> None:
        os.environ.pop("QRECIPE_PATH", None)
        self.python = PythonEngine()
        self.javascript = JavaScriptEngine()
        self.stats = Statistics()
        self.scratch = Path(tempfile.mkdtemp(prefix="qrecipe-fuzz-"))
        self.last_failure: tuple[Case, list[str]] | None = None

    def close(self) -> None:
        self.javascript.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def check(self, case: Case) -> list[str]:
        root = Path(tempfile.mkdtemp(dir=self.scratch))
        try:
            work = write_case(case, root)
            files = readable_files(case, work)
            python = self.python.run(work, case.target, case.path, files)
            javascript = self.javascript.run(work, case.target, case.path, files)
            found = differences(python, javascript)
            if not found:
                self.stats.record(case, python, javascript)
            return found
        finally:
            shutil.rmtree(root, ignore_errors=True)


def save_failure(case: Case, problems: list[str]) -> Path:
    """Write a failing case in the conformance-vector layout, for review."""
    FAILURES.mkdir(parents=True, exist_ok=True)
    index = len(list(FAILURES.iterdir())) + 1
    directory = FAILURES / f"{index:03d}-fuzz"
    work = write_case(case, directory)
    spec: dict[str, Any] = {
        "description": "A case found by the differential fuzzer (review and describe it).",
        "target": case.target,
        "expect": {"error": {"code": "?"}},
    }
    if case.path:
        spec["path"] = case.path
    (work / "case.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    (directory / "problems.txt").write_text("\n\n".join(problems) + "\n", encoding="utf-8")
    return work


def run(examples: int, *, seed: int | None, report: bool = True) -> Statistics:
    """Check ``examples`` generated cases; raises AssertionError on the first disagreement."""
    fuzzer = Fuzzer()

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        print_blob=False,
    )
    @given(case=cases())
    def agree(case: Case) -> None:
        problems = fuzzer.check(case)
        if report and not problems and fuzzer.stats.cases % 500 == 0:
            print(f"{fuzzer.stats.cases} cases agree", file=sys.stderr, flush=True)
        if problems:
            fuzzer.last_failure = (case, problems)
            raise AssertionError("\n".join(problems) + "\n\n" + case.summary())

    if seed is not None:
        from hypothesis import seed as seeded

        agree = seeded(seed)(agree)
    try:
        agree()
    except AssertionError as error:
        if fuzzer.last_failure is not None:
            saved = save_failure(*fuzzer.last_failure)
            raise AssertionError(f"{error}\n\nwritten to {saved}") from None
        raise
    finally:
        fuzzer.close()
        if report:
            print(json.dumps(fuzzer.stats.report(), indent=2))
    return fuzzer.stats
