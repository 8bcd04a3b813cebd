"""Listing a model's quantizers from its config.json alone: time and peak memory.

Each measurement is a fresh interpreter (start-up and imports included) that builds the model
on the ``meta`` device, plans its quantizers with the runtime's placement and decides them
with a built-in recipe, as ``qrecipe lint --model`` does. The baseline, measured in the same
run, is an interpreter that only imports torch and transformers: the floor any such tool pays.

Prints a table and writes ``bench/results/skeleton.json``.

    python bench/skeleton_bench.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "tests" / "data" / "configs"
RESULTS = Path(__file__).parent / "results" / "skeleton.json"
RECIPE = "general/ptq/nvfp4_default-kv_fp8"
MODELS = ("llama-3-8b", "llama-3-70b", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3")

BASELINE = "import torch, transformers"

LISTING = """
import sys, time, warnings
warnings.simplefilter("ignore")
start = time.perf_counter()
from qrecipe.review import load_model, read_recipe
model = load_model(sys.argv[1])
built = time.perf_counter()
entries = read_recipe(sys.argv[2]).entries
decide_start = time.perf_counter()
decided = model.decide(entries)
enabled = sum(state.enabled for state in decided.states)
done = time.perf_counter()
# The same decisions with every attribute copy made by copy.deepcopy, as decide() made them
# before: the baseline of decide_s, measured in the same process.
import copy
import qrecipe.runtime.attributes as attributes
import qrecipe.runtime.matching as matching
attributes.copy_attributes = matching.copy_attributes = copy.deepcopy
deep_start = time.perf_counter()
deep = model.decide(entries)
deep_done = time.perf_counter()
assert deep.states == decided.states
print(len(model.slots), enabled, decide_start - start, done - decide_start, deep_done - deep_start)
"""


def run_child(code: str, *args: str) -> tuple[float, float, str]:
    """Wall time, peak RSS (MiB) and stdout of a fresh interpreter running ``code``.

    Each child runs under its own ``time`` wrapper process, so that ru_maxrss of the
    children is that one interpreter's peak, not the largest of every earlier run.
    """
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "out = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout\n"
        "wall = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(wall, peak)\n"
        "print(out, end='')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    first, _, rest = result.stdout.partition("\n")
    wall, peak = (float(x) for x in first.split())
    return wall, peak, rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = []
    baseline = [run_child(BASELINE)[:2] for _ in range(args.repeats)]
    base_wall = statistics.median(w for w, _ in baseline)
    base_peak = statistics.median(p for _, p in baseline)
    rows.append(
        {
            "model": "baseline: import torch, transformers",
            "wall_s": base_wall,
            "peak_mib": base_peak,
        }
    )
    for name in MODELS:
        runs = [
            run_child(LISTING, str(CONFIGS / f"{name}.json"), RECIPE) for _ in range(args.repeats)
        ]
        slots, enabled, build, decide, deepcopied = runs[0][2].split()
        rows.append(
            {
                "model": name,
                "quantizers": int(slots),
                "enabled": int(enabled),
                "wall_s": statistics.median(r[0] for r in runs),
                "peak_mib": statistics.median(r[1] for r in runs),
                "build_and_plan_s": float(build),
                "decide_s": float(decide),
                "decide_with_deepcopy_s": float(deepcopied),
            }
        )

    header = (
        f"{'model':<38} {'quantizers':>10} {'wall s':>7} {'x base':>7} "
        f"{'peak MiB':>9} {'x base':>7} {'decide s':>9} {'deepcopy s':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        count = str(row.get("quantizers", ""))
        print(
            f"{row['model']:<38} {count:>10} {row['wall_s']:>7.2f} "
            f"{row['wall_s'] / base_wall:>7.2f} {row['peak_mib']:>9.0f} "
            f"{row['peak_mib'] / base_peak:>7.2f}"
            + (
                f" {row['decide_s']:>9.2f} {row['decide_with_deepcopy_s']:>11.2f}"
                if "decide_s" in row
                else ""
            )
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "recipe": RECIPE,
                "repeats": args.repeats,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "measured": time.strftime("%Y-%m-%d"),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
