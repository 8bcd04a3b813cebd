"""The two implementations side by side: start-up, fuzz cases, and the resource cases.

Measures, in one run, on the same files:

* command-line start-up: ``qrecipe --version`` (Python) and ``node js/bin/qrecipe.js
  --version``, and one ``validate`` of a small recipe, each a fresh process (median);
* the differential fuzzer: per-case time of each implementation (in process: a forked Python
  child, the long-lived Node driver), and per case through the two command lines (fresh
  processes for ``resolve`` and ``validate``);
* the resource cases (inputs that must be refused quickly, with a clear message): wall time
  and peak memory (maximum resident set) of each command line, against validating a small
  recipe in the same run.

Prints a table and writes ``bench/results/agreement.json``.

    python bench/agreement_bench.py [--repeats 7] [--cases 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "agreement.json"
NODE_CLI = [
    "node",
    str(REPO / "js" / "bin" / "qrecipe.js"),
]
PYTHON_CLI = [sys.executable, "-m", "qrecipe"]
SIDES = ("python", "javascript")

SMALL = """\
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg: {num_bits: e4m3, axis: null}
"""
HEAD = "metadata:\n  recipe_type: ptq\nquantize:\n  quant_cfg:\n"


def resource_cases(root: Path) -> dict[str, Path]:
    """The inputs of the issue's resource findings (and one valid file at the size limit)."""
    cases: dict[str, Path] = {}

    def project(name: str, files: dict[str, str]) -> Path:
        directory = root / name
        for relative, text in files.items():
            file = directory / relative
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
        return directory

    cases["small recipe (baseline)"] = project("small", {"recipe.yaml": SMALL})
    entries = "- {quantizer_name: '*', enable: false}\n" * 25000
    cases["25k-entry snippet imported 200 times"] = project(
        "amplify",
        {
            "snippets/big.yaml": "imports: {}\n---\n" + entries,
            "recipe.yaml": "imports:\n  big: snippets/big\n" + HEAD + "    - $import: big\n" * 200,
        },
    )
    cases["200 KB string imported 30 times"] = project(
        "text",
        {
            "snippets/long.yaml": "imports: {}\n---\n- quantizer_name: '"
            + "x" * 200_000
            + "'\n  enable: false\n",
            "recipe.yaml": "imports:\n  long: snippets/long\n"
            + HEAD
            + "    - $import: long\n" * 30,
        },
    )
    # The import limit reached through a snippet that imports another 99 times: 1,000 imports
    # of 29,700 entries in all (within the value limit), then a 1,001st.
    leaf = "- {quantizer_name: '*', enable: false}\n" * 30
    cases["1,000 imports, then one more"] = project(
        "imports",
        {
            "snippets/leaf.yaml": leaf,
            "snippets/mid.yaml": "imports:\n  leaf: snippets/leaf\n---\n"
            + "- $import: leaf\n" * 99,
            "recipe.yaml": "imports:\n  mid: snippets/mid\n  leaf: snippets/leaf\n"
            + HEAD
            + "    - $import: mid\n" * 10
            + "    - $import: leaf\n",
        },
    )
    sparse = project(
        "sparse", {"recipe.yaml": "imports:\n  big: snippets/big\n" + HEAD + "    - $import: big\n"}
    )
    (sparse / "snippets").mkdir()
    with open(sparse / "snippets" / "big.yaml", "wb") as handle:
        handle.truncate(4 << 30)
    cases["4 GB sparse snippet"] = sparse
    cases["50,000-deep block nesting"] = project(
        "deep", {"recipe.yaml": HEAD + "    " + "- " * 50000 + "x\n"}
    )
    valid_entries = (len(entries.encode()) // 40) * "- {quantizer_name: '*', enable: false}\n"
    cases["1 MB valid list snippet (validate)"] = project(
        "large", {"recipe.yaml": "imports: {}\n---\n" + valid_entries[: (1 << 20) - 200]}
    )
    return cases


def measure(command: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak resident MB, first line of stderr) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "QRECIPE_PATH": ""},
    )
    assert process.stderr is not None
    stderr = process.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    first = stderr.splitlines()[0] if stderr else f"(exit {process.returncode})"
    return wall, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss / 1024), first


def median_run(command: list[str], cwd: Path, repeats: int) -> dict[str, float]:
    runs = [measure(command, cwd) for _ in range(repeats)]
    return {
        "wall_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
        "cpu_ms": round(statistics.median(r[1] for r in runs) * 1000, 1),
        "max_rss_mb": max(r[2] for r in runs),
    }


def startup(root: Path, repeats: int) -> dict[str, dict[str, dict[str, float]]]:
    small = root / "small"
    return {
        "--version": {
            "python": median_run([*PYTHON_CLI, "--version"], small, repeats),
            "javascript": median_run([*NODE_CLI, "--version"], small, repeats),
        },
        "validate small recipe": {
            "python": median_run([*PYTHON_CLI, "validate", "recipe.yaml"], small, repeats),
            "javascript": median_run([*NODE_CLI, "validate", "recipe.yaml"], small, repeats),
        },
    }


def resources(cases: dict[str, Path], repeats: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, directory in cases.items():
        row: dict[str, Any] = {}
        for side, cli in (("python", PYTHON_CLI), ("javascript", NODE_CLI)):
            runs = [measure([*cli, "validate", "recipe.yaml"], directory) for _ in range(repeats)]
            row[side] = {
                "wall_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
                "cpu_ms": round(statistics.median(r[1] for r in runs) * 1000, 1),
                "max_rss_mb": max(r[2] for r in runs),
                "message": runs[0][3],
            }
        results[name] = row
    return results


def fuzz_cases(count: int, cli_sample: int) -> dict[str, Any]:
    """Per-case time of the differential fuzzer, and of the same kind of cases through the CLIs."""
    sys.path.insert(0, str(REPO / "tests"))
    from hypothesis import HealthCheck, Phase, given, settings

    from fuzz.differential import run, write_case
    from fuzz.recipes import Case, cases

    report = run(count, seed=1, report=False).report()
    sample: list[Case] = []

    @settings(
        max_examples=cli_sample,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases())
    def collect(case: Case) -> None:
        sample.append(case)

    collect()
    per_case: dict[str, list[float]] = {"python": [], "javascript": []}
    with tempfile.TemporaryDirectory() as scratch:
        for index, case in enumerate(sample):
            work = write_case(case, Path(scratch) / str(index))
            roots = [arg for root in case.path for arg in ("--path", root)]
            for side, cli in (("python", PYTHON_CLI), ("javascript", NODE_CLI)):
                total = 0.0
                for command in ("resolve", "validate"):
                    total += measure([*cli, command, case.target, *roots], work)[0]
                per_case[side].append(total)
    report["cli_per_case_median_ms"] = {
        side: round(statistics.median(values) * 1000, 1) for side, values in per_case.items()
    }
    report["cli_cases"] = len(sample)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per measurement")
    parser.add_argument("--cases", type=int, default=200, help="fuzz cases to time")
    parser.add_argument("--cli-cases", type=int, default=20, help="of which through the CLIs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        cases = resource_cases(Path(scratch))
        result = {
            "python": platform.python_version(),
            "node": subprocess.run(
                ["node", "--version"], capture_output=True, text=True, check=True
            ).stdout.strip(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg()[0],
            "startup": startup(Path(scratch), args.repeats),
            "resource_cases": resources(cases, max(3, args.repeats // 2)),
        }
    result["fuzz"] = fuzz_cases(args.cases, args.cli_cases)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    print(
        f"machine: {result['cpu_count']} CPUs, load {result['load_average']:.1f}; "
        f"Python {result['python']}, Node {result['node']}"
    )
    print(f"\n{'start-up (median of fresh processes)':<42} {'Python':>22} {'JavaScript':>22}")
    for name, row in result["startup"].items():
        cells = [
            f"{row[side]['wall_ms']:>6.0f} ms ({row[side]['cpu_ms']:>4.0f} CPU)" for side in SIDES
        ]
        print(f"{name:<42} {cells[0]:>22} {cells[1]:>22}")
    fuzz = result["fuzz"]
    rows = {
        "in process (forked child / Node driver)": (
            fuzz["python_per_case"]["median_ms"],
            fuzz["javascript_per_case"]["median_ms"],
        ),
        "through the CLIs (resolve + validate)": (
            fuzz["cli_per_case_median_ms"]["python"],
            fuzz["cli_per_case_median_ms"]["javascript"],
        ),
    }
    print(f"\n{'fuzz case (median)':<42} {'Python':>16} {'JavaScript':>16}")
    for name, (python, javascript) in rows.items():
        print(f"{name:<42} {python:>13} ms {javascript:>13} ms")
    print(
        f"\n{'resource case: validate (median wall, CPU; peak RSS)':<42} "
        f"{'Python':>28} {'JavaScript':>28}"
    )
    for name, row in result["resource_cases"].items():
        cells = [
            f"{row[side]['wall_ms']:>5.0f} ms {row[side]['cpu_ms']:>5.0f} CPU "
            f"{row[side]['max_rss_mb']:>4} MB"
            for side in SIDES
        ]
        print(f"{name:<42} {cells[0]:>28} {cells[1]:>28}")
    print(f"\nwritten to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
