"""Fill in conformance-vector expectations from the Python resolver, for review.

    python tests/vectors/tools/bless.py                 # report every case that fails
    python tests/vectors/tools/bless.py --write 042-foo # write missing expected.flat.json files
    python tests/vectors/tools/bless.py --write --update 042-foo   # overwrite them too
    python tests/vectors/tools/bless.py --fill 042-foo  # complete expect.error from the result

Nothing is written unless --write or --fill is given, and only for the cases named (all cases
when none is named). Every expectation this writes is the current behaviour, not necessarily
the correct one: read each written file before committing it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS_DIR))

from test_vectors import (  # noqa: E402  (the runner lives with the tests)
    CASES_DIR,
    COMPARED_ERROR_KEYS,
    case_dirs,
    compare,
    load_case,
    run_case,
    run_isolated,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("cases", nargs="*", help="case directory names (default: all)")
    parser.add_argument("--write", action="store_true", help="write missing expected.flat.json")
    parser.add_argument("--update", action="store_true", help="with --write: overwrite them too")
    parser.add_argument("--fill", action="store_true", help="complete expect.error from the result")
    args = parser.parse_args(argv)
    selected = [CASES_DIR / name for name in args.cases] if args.cases else case_dirs()
    failing = 0
    with tempfile.TemporaryDirectory() as scratch:
        for case_dir in selected:
            spec = load_case(case_dir)
            work = Path(scratch) / case_dir.name
            if spec.get("xfail") and hasattr(os, "fork"):
                # Known bugs may crash the interpreter: run them apart, report only.
                problems = run_isolated(case_dir, work)
                if problems:
                    failing += 1
                    print(f"--- {case_dir.name} (xfail): {spec['description']}")
                    print("\n".join(f"    {line}" for line in problems))
                else:
                    print(f"--- {case_dir.name}: passes; remove its xfail")
                continue
            outcome = run_case(case_dir, work)
            expect = spec["expect"]
            if "flat" in expect and args.write and outcome.flat_text is not None:
                target = case_dir / expect["flat"]
                if args.update or not target.exists():
                    target.write_bytes(outcome.flat_text.encode("utf-8"))
                    print(f"{case_dir.name}: wrote {expect['flat']}")
            if "error" in expect and args.fill and outcome.first_error() is not None:
                actual = outcome.first_error()
                missing = {k: actual[k] for k in COMPARED_ERROR_KEYS if k not in expect["error"]}
                if missing:
                    expect["error"].update(missing)
                    text = json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
                    (case_dir / "case.json").write_text(text, encoding="utf-8")
                    print(f"{case_dir.name}: filled {sorted(missing)}")
            problems = compare(case_dir, outcome)
            if problems:
                failing += 1
                marker = " (xfail)" if spec.get("xfail") else ""
                print(f"--- {case_dir.name}{marker}: {spec['description']}")
                print("\n".join(f"    {line}" for line in problems))
    print(f"{len(selected)} case(s), {failing} not matching their expectation")
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
