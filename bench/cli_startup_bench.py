"""The two command lines side by side: one whole process each, start-up included.

Runs ``qrecipe resolve`` and ``qrecipe validate`` on a built-in recipe with the Python command
line (``python -m qrecipe``) and the JavaScript one (``node js/bin/qrecipe.js``), alternately,
and reports the median wall time of each and the ratio JavaScript / Python. The JavaScript
package must be built (``cd js && npm ci``): its schema validators are compiled ahead of
time into ``js/schema/validators.js``.

Prints a table and writes ``bench/results/cli_startup.json``.

    python bench/cli_startup_bench.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "cli_startup.json"
RECIPE = "general/ptq/nvfp4_default-kv_fp8"
COMMANDS = (["resolve", RECIPE], ["validate", RECIPE])


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None or not (REPO / "js" / "schema" / "validators.js").is_file():
        sys.exit("needs node and a built JavaScript package (cd js && npm ci)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("QRECIPE_PATH", None)
    tools = {
        "python": [sys.executable, "-m", "qrecipe"],
        "javascript": [node, str(REPO / "js" / "bin" / "qrecipe.js")],
    }
    rows = []
    for arguments in COMMANDS:
        times: dict[str, list[float]] = {name: [] for name in tools}
        for _ in range(args.repeats):  # alternate, so that load on the machine hits both alike
            for name, prefix in tools.items():
                times[name].append(wall([*prefix, *arguments], env))
        medians = {name: statistics.median(values) for name, values in times.items()}
        rows.append(
            {
                "command": " ".join(["qrecipe", *arguments]),
                "python_s": medians["python"],
                "javascript_s": medians["javascript"],
                "ratio_js_over_python": medians["javascript"] / medians["python"],
            }
        )
    header = f"{'command':<52} {'python s':>9} {'node s':>9} {'js/py':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['command']:<52} {row['python_s']:>9.3f} {row['javascript_s']:>9.3f} "
            f"{row['ratio_js_over_python']:>6.2f}"
        )
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "repeats": args.repeats,
                "python": platform.python_version(),
                "node": node_version.strip(),
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
