"""The QDQ benchmark's quick CPU mode runs end to end (the GPU run uses the same code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_bench

pytest.importorskip("torch")
pytest.importorskip("triton")
pytest.importorskip("transformers")

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


@pytest.mark.slow
def test_cpu_smoke_run_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = load_bench("qdq_bench")
    output = tmp_path / "qdq.json"
    argv = ["--device", "cpu", "--size", "64", "--no-compile", "--output", str(output)]
    assert bench.main([*argv, "--formats", "fp8,int8_per_channel,nvfp4 (calibrated),mxfp4"]) == 0
    result = json.loads(output.read_text())
    implementations = {(r["format"], r["implementation"]) for r in result["kernels"]}
    assert ("copy", "torch.clone") in implementations
    assert ("nvfp4 (calibrated)", "qrecipe triton") in implementations
    assert ("mxfp4", "torch eager (reference)") in implementations
    assert ("int8_per_channel", "qrecipe torch") in implementations
    assert all(r["seconds"] > 0 for r in result["kernels"])
    variants = [r["variant"] for r in result["model"]]
    assert variants == ["bf16", "fake-quant general/ptq/fp8_default-kv_fp8"]
    assert "GB/s" in capsys.readouterr().out


def test_without_cuda_the_gpu_run_explains_itself(capsys: pytest.CaptureFixture) -> None:
    bench = load_bench("qdq_bench")
    if bench.cuda_available():
        pytest.skip("a CUDA device is present")
    assert bench.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
