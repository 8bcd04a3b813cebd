"""Python and JavaScript agree on generated recipe trees (a seeded, bounded fuzz run).

The generator, the two engines and what is compared are in tests/fuzz/; ``make fuzz`` runs the
same check on many more cases. Node.js and the JavaScript package's dependencies are needed
(``make test`` installs them).
"""

from __future__ import annotations

import os
import shutil

import pytest

from fuzz.differential import run

CASES = int(os.environ.get("QRECIPE_FUZZ_CASES", "500"))
SEED = 20260101


@pytest.mark.slow
def test_python_and_javascript_agree_on_generated_recipe_trees() -> None:
    if shutil.which("node") is None:
        pytest.fail("the differential fuzzer needs Node.js (the JavaScript implementation)")
    statistics = run(CASES, seed=SEED, report=False)
    assert statistics.cases >= CASES
    # The run must exercise both outcomes: recipes that resolve, and every kind of refusal.
    assert statistics.outcomes["resolved"] >= CASES // 20
    assert {"syntax", "schema", "limit"} <= set(statistics.outcomes)
