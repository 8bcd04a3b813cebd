"""Running one case under each implementation, in a way no input can take the fuzzer down.

Python: every case runs in a forked child (the parent has everything imported and warm), so a
crash of the interpreter, a hang or a traceback is a result, not the end of the run. JavaScript:
one long-lived ``node js/test/fuzz/driver.js`` answers every case (its start-up is ~100 ms, far
more than a case); if it dies or stops answering it is restarted and the case counts as a crash.

Both run the command line (``resolve`` and ``validate``) and the API, and read every file of the
case on its own, so that the fuzzer compares exit codes, output bytes, the first diagnostic and
what each file reads as.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import select
import signal
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

import qrecipe
from qrecipe.cli import main as python_cli
from qrecipe.language import RecipeError
from qrecipe.language.canonical import canonical_text
from qrecipe.language.jsonio import parse_json
from qrecipe.language.schemacheck import schema_diagnostics
from qrecipe.language.yamlio import parse_yaml

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "js" / "test" / "fuzz" / "driver.js"
COMPARED = ("code", "file", "line", "column", "pointer")


def diagnostic_view(diagnostic: qrecipe.Diagnostic) -> dict[str, Any]:
    return {
        "code": diagnostic.code,
        "message": diagnostic.message,
        "file": diagnostic.file,
        "line": diagnostic.line,
        "column": diagnostic.column,
        "pointer": diagnostic.pointer,
        "chain": list(diagnostic.chain),
        "hint": diagnostic.hint,
    }


def sort_key(diagnostic: qrecipe.Diagnostic) -> tuple[int, int, str]:
    return (diagnostic.line or 0, diagnostic.column or 0, diagnostic.pointer)


def parse_view(raw: bytes, name: str) -> dict[str, Any]:
    """What one file reads as: its documents with positions, or the first problem."""
    try:
        documents = [parse_json(raw, name)] if name.endswith(".json") else parse_yaml(raw, name)
    except RecipeError as error:
        return {"error": diagnostic_view(error.first)}
    return {
        "documents": [
            {
                "data": canonical_text(doc.data),
                "positions": {k: list(v) for k, v in doc.positions.items()},
                "keys": {k: list(v) for k, v in doc.key_positions.items()},
                "start": list(doc.start),
            }
            for doc in documents
        ]
    }


def _pyyaml_view(value: Any) -> Any:
    """PyYAML's data as qrecipe builds it (integer keys are strings)."""
    if isinstance(value, dict):
        return {
            (str(k) if isinstance(k, int) and not isinstance(k, bool) else k): _pyyaml_view(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_pyyaml_view(v) for v in value]
    return value


def reference_disagreement(raw: bytes, name: str, view: dict[str, Any]) -> str | None:
    """A text qrecipe accepts must read the same with PyYAML (both loaders) or json."""
    if "documents" not in view:
        return None
    ours = [doc["data"] for doc in view["documents"]]
    text = raw.decode("utf-8-sig")
    loaders = {"json": None} if name.endswith(".json") else {"SafeLoader": yaml.SafeLoader}
    if not name.endswith(".json"):
        loaders["CSafeLoader"] = yaml.CSafeLoader
    for label, loader in loaders.items():
        try:
            if loader is None:
                theirs = [json.loads(text)]
            else:
                theirs = list(yaml.load_all(text, Loader=loader))
            theirs = [canonical_text(_pyyaml_view(doc)) for doc in theirs]
        except Exception as error:
            return f"{label} refuses what qrecipe reads: {type(error).__name__}: {error}"
        if theirs != ours:
            return f"{label} reads {theirs!r}, qrecipe reads {ours!r}"
    return None


def _run_cli(argv: list[str]) -> dict[str, Any]:
    out = io.BytesIO()
    text = io.TextIOWrapper(out, encoding="utf-8", newline="\n", write_through=True)
    err = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(err):
        try:
            status = python_cli(argv)
        except SystemExit as exit_:  # argparse's usage errors
            status = exit_.code if isinstance(exit_.code, int) else 2
    text.flush()
    return {
        "status": status,
        "stdout": base64.b64encode(out.getvalue()).decode(),
        "stderr": err.getvalue(),
    }


def _first(diagnostics: list[qrecipe.Diagnostic]) -> list[dict[str, Any]]:
    return [diagnostic_view(d) for d in sorted(diagnostics, key=sort_key)]


def python_case(case_dir: Path, target: str, path: list[str], files: list[str]) -> dict[str, Any]:
    """Everything the Python implementation says about one case (run in a child process)."""
    os.chdir(case_dir)
    roots = [arg for root in path for arg in ("--path", root)]
    result: dict[str, Any] = {
        "resolve": _run_cli(["resolve", target, *roots]),
        "validate": _run_cli(["validate", target, *roots]),
    }
    result["validateDiagnostics"] = _first(qrecipe.validate(target, path=path))
    try:
        qrecipe.resolve(target, path=path)
        result["resolveDiagnostics"] = []
    except RecipeError as error:
        result["resolveDiagnostics"] = _first(error.diagnostics)
    parsed, reference = {}, {}
    for name in files:
        raw = (case_dir / name).read_bytes()
        parsed[name] = parse_view(raw, name)
        problem = reference_disagreement(raw, name, parsed[name])
        if problem:
            reference[name] = problem
    result["parse"] = parsed
    result["reference"] = reference
    return result


class PythonEngine:
    """Runs each case in a forked child with a time limit."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        # Warm up what every child would otherwise load: schemas, validators (the full
        # validator is only imported for invalid documents), the library.
        qrecipe.validate("general/ptq/fp8_default-kv_fp8")
        parse_view(b"a: 1\n", "warm.yaml")
        definitions = {
            "recipe": [None, "list_snippet_header", "entry_list", "directory_recipe_file"],
            "flat": [None, "entry"],
        }
        definitions["recipe"] += ["metadata_file", "algorithm_object"]
        for schema, names in definitions.items():
            for definition in names:
                schema_diagnostics({"?": 1}, None, None, schema=schema, definition=definition)

    def run(self, case_dir: Path, target: str, path: list[str], files: list[str]) -> dict[str, Any]:
        started = time.perf_counter()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: answer, then leave without cleanup
            os.close(read_end)
            try:
                answer = python_case(case_dir, target, path, files)
            except BaseException:
                answer = {"crash": traceback.format_exc()}
            data = json.dumps(answer).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
            os._exit(0)
        os.close(write_end)
        chunks: list[bytes] = []
        deadline = started + self.timeout
        timed_out = False
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while True:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    timed_out = True
                    os.kill(pid, signal.SIGKILL)
                    break
                ready, _, _ = select.select([pipe], [], [], remaining)
                if not ready:
                    continue
                chunk = pipe.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        if timed_out:
            answer = {"crash": f"no answer within {self.timeout:.0f} s"}
        elif os.WIFSIGNALED(status):
            answer = {"crash": f"the interpreter died of signal {os.WTERMSIG(status)}"}
        else:
            try:
                answer = json.loads(b"".join(chunks))
            except ValueError:
                answer = {"crash": f"no answer (exit status {status})"}
        answer["seconds"] = seconds
        answer["rss_mb"] = usage.ru_maxrss / 1024
        return answer


class JavaScriptEngine:
    """One Node process answering case after case; restarted when it dies or hangs."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                ["node", str(DRIVER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "QRECIPE_PATH": ""},
            )
        return self.process

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        process = self.start()
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            self.close()
            return {"crash": "the Node process died", "seconds": time.perf_counter() - started}
        line = b""
        deadline = started + self.timeout
        while not line.endswith(b"\n"):
            remaining = deadline - time.perf_counter()
            ready, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
            if not ready:
                process.kill()
                self.close()
                return {"crash": f"no answer within {self.timeout:.0f} s", "seconds": self.timeout}
            chunk = os.read(process.stdout.fileno(), 1 << 20)
            if not chunk:
                code = process.wait()
                self.close()
                return {
                    "crash": f"the Node process died (exit status {code})",
                    "seconds": time.perf_counter() - started,
                }
            line += chunk
        answer: dict[str, Any] = json.loads(line)
        answer["seconds"] = time.perf_counter() - started
        return answer

    def run(self, case_dir: Path, target: str, path: list[str], files: list[str]) -> dict[str, Any]:
        return self.ask(
            {"op": "case", "cwd": str(case_dir), "target": target, "path": path, "files": files}
        )
