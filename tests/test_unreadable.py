"""An unreadable snippet is a diagnostic, the same in Python and JavaScript.

The fuzzer runs as whoever runs the tests, often root, who can read any file; so this test
reads as an unprivileged user where it has to (a forked Python child drops to ``nobody``;
Node runs as ``nobody``), and as itself otherwise.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qrecipe

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
RECIPE = """\
imports:
  secret: snippets/secret
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - $import: secret
"""


@pytest.fixture
def project() -> Iterator[Path]:
    """A recipe importing a snippet nobody may read, in a directory anyone may enter."""
    directory = Path(tempfile.mkdtemp(prefix="qrecipe-unreadable-"))
    try:
        (directory / "snippets").mkdir()
        (directory / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
        secret = directory / "snippets" / "secret.yaml"
        secret.write_text("quantizer_name: '*'\nenable: false\n", encoding="utf-8")
        secret.chmod(0)
        for path in (directory, directory / "snippets"):
            path.chmod(0o755)
        (directory / "recipe.yaml").chmod(0o644)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def first_problem(diagnostics: list[dict[str, Any]]) -> dict[str, Any]:
    diagnostics.sort(key=lambda d: (d["line"] or 0, d["column"] or 0, d["pointer"]))
    return {key: diagnostics[0][key] for key in ("code", "file", "line", "column", "pointer")}


def python_diagnostics(project: Path) -> list[dict[str, Any]]:
    """qrecipe.validate in a child process that cannot read the snippet."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges if need be, validate, report, leave
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                # Load what validation loads lazily while the interpreter's files are readable.
                qrecipe.validate("general/ptq/fp8_default-kv_fp8")
                importlib.import_module("importlib.readers")
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.chdir(project)
            found = [d.to_dict() for d in qrecipe.validate("recipe.yaml")]
            os.write(write_end, json.dumps(found).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)  # type: ignore[no-any-return]


def javascript_result(project: Path) -> tuple[int, dict[str, Any]]:
    as_nobody = {"user": NOBODY, "group": NOBODY} if os.geteuid() == 0 else {}
    completed = subprocess.run(
        [
            "node",
            str(REPO / "js" / "bin" / "qrecipe.js"),
            "validate",
            "--format",
            "json",
            "recipe.yaml",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(project)},
        check=False,
        **as_nobody,  # type: ignore[arg-type]
    )
    report = json.loads(completed.stdout)
    return completed.returncode, report


def test_an_unreadable_snippet_is_the_same_diagnostic_in_both_languages(project: Path) -> None:
    python = python_diagnostics(project)
    assert python, "the snippet was read: the test could not make it unreadable"
    assert python[0]["message"] == "cannot read snippets/secret.yaml: Permission denied"
    status, report = javascript_result(project)
    assert status == 1
    javascript = report["results"][0]["errors"]
    assert (
        first_problem(javascript)
        == first_problem(python)
        == {
            "code": "not-found",
            "file": "snippets/secret.yaml",
            "line": None,
            "column": None,
            "pointer": "",
        }
    )
    assert javascript[0]["message"] == python[0]["message"]
