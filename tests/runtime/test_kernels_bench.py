"""The QDQ benchmark's quick CPU mode runs end to end (the GPU run uses the same code)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")
pytest.importorskip("transformers")

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "qdq_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("qdq_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_smoke_run_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = load_bench()
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
    bench = load_bench()
    if bench.cuda_available():
        pytest.skip("a CUDA device is present")
    assert bench.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
