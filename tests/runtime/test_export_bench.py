"""The export benchmark's small mode runs end to end (the full run uses the same code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_bench

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = [pytest.mark.runtime, pytest.mark.slow, pytest.mark.filterwarnings("ignore")]


def test_small_run_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = load_bench("export_bench")
    output = tmp_path / "export.json"
    assert bench.main(["--small", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    rows = {row["recipe"]: row for row in result["cases"]}
    fp8 = rows["general/ptq/fp8_default-kv_fp8"]
    nvfp4 = rows["general/ptq/nvfp4_default-kv_fp8"]
    # One byte per FP8 weight (a scale per layer on top); NVFP4: 4.5 bits per weight.
    assert 0.5 <= fp8["quantized_layers_vs_bf16"] < 0.501
    assert 0.28 <= nvfp4["quantized_layers_vs_bf16"] < 0.2815
    assert nvfp4["checkpoint_vs_bf16"] < fp8["checkpoint_vs_bf16"] < 1
    # Loading holds the checkpoint's tensors, never the full-precision weights.
    for row in (fp8, nvfp4):
        assert row["load_peak_bytes"] <= 1.05 * row["checkpoint_bytes"]
        assert row["load_peak_vs_bf16"] < row["checkpoint_vs_bf16"] + 0.05
    assert "ckpt/bf16" in capsys.readouterr().out
