"""Listing a model's quantizers from its config.json alone: time and peak memory.

Each measurement is a fresh interpreter (start-up and imports included) that builds the model
on the ``meta`` device, plans its quantizers with the runtime's placement and decides them
with a built-in recipe, as ``qrecipe lint --model`` does. The baseline, measured in the same
run, is an interpreter that only imports torch and transformers: the floor any such tool pays.
A second interpreter per model times ``decide`` (``decide_compared_s``) against
``decide_before_s``: the same decisions, checked equal, made in the same process by the
matching loop as it was before its attribute copies were made cheap.

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

DECIDE_AGAINST_BEFORE = """
import sys, time, warnings
warnings.simplefilter("ignore")
from qrecipe.review import read_recipe
# decide() against its baseline in one process: the runtime's matching as it was written
# before (every attribute object deep-copied per quantizer and per matching entry, each
# pattern matched with fnmatchcase per name); it must reach the same decisions.
import copy, fnmatch
from qrecipe.runtime.attributes import ATTRIBUTE_DEFAULTS
from qrecipe.runtime.matching import class_names, decide
from qrecipe.runtime.placement import plan
from qrecipe.review.skeleton import build_on_meta, config_file, read_config
def complete(cfg, enable):
    attributes = copy.deepcopy(ATTRIBUTE_DEFAULTS)
    attributes.update(copy.deepcopy(cfg))
    attributes["enable"] = bool(enable)
    return attributes
def decide_before(slots, quant_cfg):
    decisions = {s.name: [copy.deepcopy(s.default), None, None] for s in slots}
    parents = {id(s.parent): class_names(s.parent) for s in slots}
    for index, entry in enumerate(quant_cfg):
        pattern, parent_class = entry["quantizer_name"], entry.get("parent_class")
        enable, cfg = bool(entry.get("enable", True)), entry.get("cfg")
        for slot in slots:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in slot.match_names):
                continue
            if parent_class and parent_class not in parents[id(slot.parent)]:
                continue
            decision = decisions[slot.name]
            decision[1] = index
            if cfg is None:
                for stage in decision[0] if isinstance(decision[0], list) else [decision[0]]:
                    stage["enable"] = enable
            else:
                decision[2] = index
                decision[0] = (
                    [complete(c, enable) for c in cfg] if isinstance(cfg, list)
                    else complete(cfg, enable)
                )
    return decisions
entries = read_recipe(sys.argv[2]).entries
slots = [s for o in plan(build_on_meta(read_config(config_file(sys.argv[1])))) for s in o.slots]
before_start = time.perf_counter()
before = decide_before(slots, entries)
now_start = time.perf_counter()
now = decide(slots, entries)[0]
now_done = time.perf_counter()
assert {k: [d.attributes, d.decided_by, d.configured_by] for k, d in now.items()} == before
print(now_done - now_start, now_start - before_start)
"""

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
print(len(model.slots), enabled, built - start, done - decide_start)
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
        slots, enabled, build, decide = runs[0][2].split()
        compared = run_child(DECIDE_AGAINST_BEFORE, str(CONFIGS / f"{name}.json"), RECIPE)[2]
        decide_now, decide_before = compared.split()
        rows.append(
            {
                "model": name,
                "quantizers": int(slots),
                "enabled": int(enabled),
                "wall_s": statistics.median(r[0] for r in runs),
                "peak_mib": statistics.median(r[1] for r in runs),
                "build_and_plan_s": float(build),
                "decide_s": float(decide),
                "decide_compared_s": float(decide_now),
                "decide_before_s": float(decide_before),
            }
        )

    header = (
        f"{'model':<38} {'quantizers':>10} {'wall s':>7} {'x base':>7} "
        f"{'peak MiB':>9} {'x base':>7} {'decide s':>9} {'before s':>9} {'x before':>8}"
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
                f" {row['decide_compared_s']:>9.2f} {row['decide_before_s']:>9.2f}"
                f" {row['decide_compared_s'] / row['decide_before_s']:>8.2f}"
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
