"""Run the language-neutral conformance vectors (tests/vectors/cases) against the Python resolver.

Each case directory is copied to a temporary directory, which becomes the working directory
(with QRECIPE_PATH unset), its "generate" entries are written, and the target is resolved or
validated. The format is described in tests/vectors/README.md; the JavaScript resolver runs the
same cases.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import qrecipe
from qrecipe.language import errors

CASES_DIR = Path(__file__).parent / "vectors" / "cases"
MIN_CASES = 150
COMPARED_ERROR_KEYS = ("code", "file", "pointer", "line", "column")


def case_dirs() -> list[Path]:
    return sorted(p for p in CASES_DIR.iterdir() if (p / "case.json").is_file())


def load_case(case_dir: Path) -> dict[str, Any]:
    return json.loads((case_dir / "case.json").read_text(encoding="utf-8"))


def generate(spec: dict[str, Any], work: Path) -> None:
    """Create the files a case asks for at test time (big files, symbolic links, FIFOs)."""
    for item in spec.get("generate", []):
        if "symlink" in item:
            link = work / item["symlink"]
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(item["target"], link)
            continue
        if "fifo" in item:
            (work / item["fifo"]).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(work / item["fifo"])
            continue
        if "size" in item:  # a sparse file: its size costs no disk
            file = work / item["file"]
            file.parent.mkdir(parents=True, exist_ok=True)
            with open(file, "wb") as handle:
                handle.truncate(item["size"])
            continue
        text = item.get("header", "") + item["line"] * item["repeat"] + item.get("footer", "")
        file = work / item["file"]
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(text.encode("utf-8"))


@contextmanager
def inside(work: Path) -> Iterator[None]:
    """The case directory as working directory, without QRECIPE_PATH."""
    old_cwd = os.getcwd()
    old_env = os.environ.pop("QRECIPE_PATH", None)
    os.chdir(work)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        if old_env is not None:
            os.environ["QRECIPE_PATH"] = old_env


def sort_key(diagnostic: qrecipe.Diagnostic) -> tuple[int, int, str]:
    # A diagnostic without a line or column sorts as if it were at line 0, column 0.
    return (diagnostic.line or 0, diagnostic.column or 0, diagnostic.pointer)


@dataclass
class Outcome:
    """What the Python implementation produced for a case."""

    flat_text: str | None = None
    diagnostics: tuple[qrecipe.Diagnostic, ...] = ()

    def first_error(self) -> dict[str, Any] | None:
        return self.compared()[0] if self.diagnostics else None

    def compared(self) -> list[dict[str, Any]]:
        """Every diagnostic, as the keys a case compares."""
        return [
            {
                "code": d.code,
                "file": d.file,
                "pointer": d.pointer,
                "line": d.line,
                "column": d.column,
            }
            for d in self.diagnostics
        ]


def run_case(case_dir: Path, work: Path) -> Outcome:
    """Copy ``case_dir`` to ``work``, generate its files and run its target there."""
    spec = load_case(case_dir)
    shutil.copytree(case_dir, work, symlinks=True)
    generate(spec, work)
    path = spec.get("path", [])
    with inside(work):
        if "flat" in spec["expect"]:
            try:
                flat = qrecipe.resolve(spec["target"], path=path)
            except qrecipe.RecipeError as error:
                return Outcome(diagnostics=tuple(sorted(error.diagnostics, key=sort_key)))
            return Outcome(flat_text=qrecipe.pretty_json(flat))
        diagnostics = qrecipe.validate(spec["target"], path=path)
        return Outcome(diagnostics=tuple(sorted(diagnostics, key=sort_key)))


def compare(case_dir: Path, outcome: Outcome) -> list[str]:
    """Differences between a case's expectation and the outcome (empty when it passes)."""
    expect = load_case(case_dir)["expect"]
    shown = [d.format() for d in outcome.diagnostics]
    if "flat" in expect:
        if outcome.flat_text is None:
            return ["expected a flat recipe, got errors:", *shown]
        wanted = (case_dir / expect["flat"]).read_bytes()
        if outcome.flat_text.encode("utf-8") != wanted:
            return [f"resolved output differs from {expect['flat']}"]
        return []
    if "valid" in expect:
        return ["expected no diagnostics, got:", *shown] if outcome.diagnostics else []
    wanted_error = expect["error"]
    actual = outcome.first_error()
    if actual is None:
        return [f"expected error {wanted_error}, but the target is valid"]
    differences = [
        f"{key}: expected {wanted_error[key]!r}, got {actual[key]!r}"
        for key in COMPARED_ERROR_KEYS
        if key in wanted_error and wanted_error[key] != actual[key]
    ]
    if "diagnostics" in expect:
        differences += every_difference(expect["diagnostics"], outcome.compared())
    return [*differences, "diagnostics:", *shown] if differences else []


def every_difference(wanted: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences between the whole expected list of diagnostics and the one produced."""
    if len(wanted) != len(actual):
        return [f"expected {len(wanted)} diagnostics, got {len(actual)}"]
    return [
        f"diagnostic {index}: {key}: expected {want[key]!r}, got {got[key]!r}"
        for index, (want, got) in enumerate(zip(wanted, actual, strict=True))
        for key in COMPARED_ERROR_KEYS
        if key in want and want[key] != got[key]
    ]


def run_isolated(case_dir: Path, work: Path) -> list[str]:
    """Run a case in a forked process, so that a case that crashes the interpreter (a known,
    reported bug marked xfail) fails on its own instead of ending the whole test run."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the case, send the differences, exit without cleanup
        os.close(read_end)
        try:
            problems = compare(case_dir, run_case(case_dir, work))
        except BaseException as error:  # any exception is a result to report, not to raise
            problems = [f"{type(error).__name__}: {error}"]
        os.write(write_end, json.dumps(problems).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return [f"the resolver crashed the interpreter (signal {os.WTERMSIG(status)})"]
    return json.loads(sent)


CASES = case_dirs()


@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_vector(case_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    reason = load_case(case_dir).get("xfail")
    work = tmp_path / case_dir.name
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
        if hasattr(os, "fork"):
            problems = run_isolated(case_dir, work)
            assert not problems, "\n".join(problems)
            return
    problems = compare(case_dir, run_case(case_dir, work))
    assert not problems, "\n".join(problems)


def test_vectors_cover_every_error_code() -> None:
    assert len(CASES) >= MIN_CASES
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.RecipeError) and cls.code != "error"
    }
    covered = {
        load_case(p)["expect"]["error"].get("code")
        for p in CASES
        if "error" in load_case(p)["expect"] and not load_case(p).get("xfail")
    }
    assert codes - covered == set()


def test_case_directories_are_well_formed() -> None:
    allowed_spec_keys = {"description", "target", "path", "expect", "generate", "xfail"}
    for number, case_dir in enumerate(CASES, start=1):
        assert case_dir.name.startswith(f"{number:03d}-"), case_dir.name
        spec = load_case(case_dir)
        assert set(spec) <= allowed_spec_keys, case_dir.name
        assert spec["description"].strip(), case_dir.name
        kind, *more = spec["expect"]
        assert kind in ("flat", "valid", "error"), case_dir.name
        # An error case may list every diagnostic, not only the first.
        assert more in ([], ["diagnostics"]), case_dir.name
        assert not more or kind == "error", case_dir.name
        if kind == "flat":
            assert (case_dir / spec["expect"]["flat"]).is_file(), case_dir.name
        if kind == "error":
            assert set(spec["expect"]["error"]) <= set(COMPARED_ERROR_KEYS), case_dir.name
            assert "code" in spec["expect"]["error"], case_dir.name
            for listed in spec["expect"].get("diagnostics", []):
                assert "code" in listed, case_dir.name
                assert set(listed) <= set(COMPARED_ERROR_KEYS), case_dir.name
