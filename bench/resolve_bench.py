"""Resolver speed: qrecipe against ModelOpt's recipe loader, measured in the same run.

Measures, for every built-in recipe and for every PTQ recipe of ModelOpt's own library (the
same files for both tools when ModelOpt is installed):

* whole process, interpreter start included: validate + resolve every recipe in one fresh
  process, against a fresh process that imports ModelOpt and loads the same recipes;
* per recipe, in process: the first (cold) resolution and the median of warm repeats.

Prints a table and writes ``bench/results/resolve.json``.

    python bench/resolve_bench.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "resolve.json"

QRECIPE_PROCESS = """
import json, sys, time
start = time.perf_counter()
import qrecipe
targets, roots = json.loads(sys.argv[1]), json.loads(sys.argv[2])
times = {}
for target in targets:
    t0 = time.perf_counter()
    problems = qrecipe.validate(target, path=roots)
    assert not problems, problems
    qrecipe.resolve(target, path=roots)
    times[target] = time.perf_counter() - t0
print(json.dumps({"per_recipe": times, "inside": time.perf_counter() - start}))
"""

MODELOPT_PROCESS = """
import contextlib, io, json, sys, time, warnings
warnings.filterwarnings("ignore")
start = time.perf_counter()
from modelopt.recipe import load_recipe
imported = time.perf_counter() - start
times = {}
for target in json.loads(sys.argv[1]):
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        load_recipe(target)
    times[target] = time.perf_counter() - t0
print(json.dumps({"import": imported, "per_recipe": times, "inside": time.perf_counter() - start}))
"""


def run_process(code: str, *args: str) -> tuple[float, dict]:
    """Wall time of a fresh interpreter running ``code`` (start-up included) and its report."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout
    return time.perf_counter() - start, json.loads(out.strip().splitlines()[-1])


def modelopt_library() -> Path | None:
    spec = importlib.util.find_spec("modelopt_recipes")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def ptq_recipes(root: Path) -> list[Path]:
    import yaml

    found = []
    for file in sorted(root.rglob("*.y*ml")):
        try:
            documents = list(yaml.safe_load_all(file.read_text()))
        except yaml.YAMLError:
            continue
        body = documents[-1] if documents else None
        if isinstance(body, dict) and (body.get("metadata") or {}).get("recipe_type") == "ptq":
            found.append(file)
    return found


def warm_times(targets: list[str], roots: list[str], repeats: int) -> dict[str, dict[str, float]]:
    import qrecipe

    results = {}
    for target in targets:
        t0 = time.perf_counter()
        qrecipe.validate(target, path=roots)
        qrecipe.resolve(target, path=roots)
        cold = time.perf_counter() - t0
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            qrecipe.resolve(target, path=roots)
            samples.append(time.perf_counter() - t0)
        results[target] = {"cold_ms": cold * 1e3, "warm_ms": statistics.median(samples) * 1e3}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20, help="warm repeats per recipe")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()

    import qrecipe

    builtins = [info.name for info in qrecipe.list_recipes()]
    report: dict = {"python": sys.version.split()[0], "cpu_count": os.cpu_count()}

    wall, _ = run_process(QRECIPE_PROCESS, json.dumps(builtins), "[]")
    report["builtin"] = {
        "recipes": len(builtins),
        "process_s": wall,
        "per_recipe_ms": warm_times(builtins, [], args.repeats),
    }

    library = modelopt_library()
    if library is not None:
        files = [str(f) for f in ptq_recipes(library)]
        q_wall, _ = run_process(QRECIPE_PROCESS, json.dumps(files), json.dumps([str(library)]))
        m_wall, m_inner = run_process(MODELOPT_PROCESS, json.dumps(files))
        q_warm = warm_times(files, [str(library)], args.repeats)
        report["modelopt_library"] = {
            "recipes": len(files),
            "qrecipe_process_s": q_wall,
            "modelopt_process_s": m_wall,
            "modelopt_import_s": m_inner["import"],
            "process_speedup": m_wall / q_wall,
            "qrecipe_warm_median_ms": statistics.median(v["warm_ms"] for v in q_warm.values()),
            "modelopt_per_recipe_median_ms": statistics.median(m_inner["per_recipe"].values())
            * 1e3,
            "per_recipe": {
                Path(f).relative_to(library).as_posix(): {
                    **q_warm[f],
                    "modelopt_ms": m_inner["per_recipe"][f] * 1e3,
                }
                for f in files
            },
        }

    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nsaved {args.output}")
    return 0


def print_table(report: dict) -> None:
    builtin = report["builtin"]
    print(f"qrecipe built-in library: {builtin['recipes']} recipes")
    print(f"{'recipe':<58} {'cold ms':>8} {'warm ms':>8}")
    for name, t in builtin["per_recipe_ms"].items():
        print(f"{name:<58} {t['cold_ms']:>8.2f} {t['warm_ms']:>8.3f}")
    warm = [t["warm_ms"] for t in builtin["per_recipe_ms"].values()]
    if warm:
        print(f"{'median':<58} {'':>8} {statistics.median(warm):>8.3f}")
    print(
        f"whole process (interpreter start, validate + resolve all): {builtin['process_s']:.3f} s"
    )
    mo = report.get("modelopt_library")
    if mo is None:
        print("\nnvidia-modelopt is not installed: no comparison")
        return
    print(f"\nModelOpt's library, the same {mo['recipes']} PTQ recipe files for both tools:")
    print(f"{'':<40} {'qrecipe':>10} {'ModelOpt':>10} {'ratio':>8}")
    print(
        f"{'whole process (s)':<40} {mo['qrecipe_process_s']:>10.3f} "
        f"{mo['modelopt_process_s']:>10.3f}"
        f" {mo['process_speedup']:>7.1f}x"
    )
    print(
        f"{'per recipe, median (ms)':<40} {mo['qrecipe_warm_median_ms']:>10.3f}"
        f" {mo['modelopt_per_recipe_median_ms']:>10.3f}"
        f" {mo['modelopt_per_recipe_median_ms'] / mo['qrecipe_warm_median_ms']:>7.1f}x"
    )
    print(f"{'ModelOpt import alone (s)':<40} {'':>10} {mo['modelopt_import_s']:>10.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
