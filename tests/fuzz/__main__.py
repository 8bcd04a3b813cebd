"""``python -m fuzz --cases N [--seed S]``: a long differential fuzz run (``make fuzz``)."""

from __future__ import annotations

import argparse
import sys

from .differential import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000, help="generated cases to check")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: a fixed one)")
    args = parser.parse_args()
    try:
        run(args.cases, seed=args.seed)
    except AssertionError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
