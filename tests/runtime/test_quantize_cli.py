"""``qrecipe quantize``: a model directory to a checkpoint, and every refusal before the work.

Each refusal is checked for its exit status, its message, the absence of a traceback and of
any output directory (nothing was calibrated or written).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import qrecipe  # noqa: E402
from checkpoint_models import save_model_dir, tokens  # noqa: E402
from qrecipe.cli import main  # noqa: E402
from qrecipe.runtime.load import load  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.filterwarnings("ignore::UserWarning")]

NVFP4 = "general/ptq/nvfp4_default-kv_fp8"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_dir(tmp_path_factory.mktemp("models") / "tiny-llama")


def quantize(*args: str) -> int:
    return main(["quantize", *args, "--quiet"])


def test_quantizes_to_a_checkpoint(model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out"
    assert quantize(str(model_dir), "--recipe", NVFP4, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "exported 14 quantized layers (modelopt)" in printed
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "hf_quant_config.json", "model.safetensors", "recipe.flat.json"} <= names
    assert {"qrecipe-report.json", "tokenizer.json", "generation_config.json"} <= names
    for copied in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (out / copied).read_bytes() == (model_dir / copied).read_bytes()
    report = json.loads((out / "qrecipe-report.json").read_text())
    flat = qrecipe.resolve(NVFP4)
    assert report["recipe"] == flat["fingerprint"]
    assert report["calibration"] == {"samples": 32, "batches": 8}
    assert report["quantization"]["counts"]["enabled"] == 32
    assert len(report["export"]["quantized_layers"]) == 14
    assert (out / "model.safetensors").stat().st_size < 0.35 * (
        model_dir / "model.safetensors"
    ).stat().st_size

    assert main(["fingerprint", str(out)]) == 0
    assert capsys.readouterr().out.strip() == flat["fingerprint"]
    with torch.no_grad():
        assert load(out)(tokens()).logits.isfinite().all()


def test_calibration_options(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"the quick fox {i}"}) for i in range(5)))
    out = tmp_path / "out"
    args = ["--calib", str(data), "--calib-samples", "3", "--batch-size", "2", "--seq-len", "4"]
    assert quantize(str(model_dir), "--recipe", NVFP4, "--out", str(out), *args) == 0
    report = json.loads((out / "qrecipe-report.json").read_text())
    assert report["calibration"] == {"samples": 3, "batches": 2}
    assert report["dtype"] == "float32"
    assert report["device"] == "cpu"


def test_dry_run_places_without_calibrating(model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    recipe = "general/ptq/fp8_qkvo-nvfp4_mlp"
    assert quantize(str(model_dir), "--recipe", recipe, "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "model.layers.1.mlp.down_proj.weight_quantizer" in printed
    assert "export (modelopt): FP8 x8, NVFP4 x6; KV cache: none" in printed
    assert "not run: --dry-run" in printed


def test_compressed_tensors_export(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--recipe", "general/ptq/fp8_default-kv_fp8", "--export-format", "compressed-tensors"]
    assert quantize(str(model_dir), *args, "--out", str(out)) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    assert not (out / "hf_quant_config.json").exists()


def test_compressed_tensors_int4_export(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = "general/ptq/int4_blockwise_weight_only"
    args = ["--recipe", recipe, "--export-format", "compressed-tensors"]
    assert quantize(str(model_dir), *args, "--out", str(out)) == 0
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["format"] == "pack-quantized"
    assert config["config_groups"]["group_0"]["weights"]["group_size"] == 128
    loaded = load(out)
    assert loaded.model.layers[0].mlp.down_proj.weight_packed.kind == "int4"
    with torch.no_grad():
        assert loaded(tokens()).logits.isfinite().all()


# -- refusals -----------------------------------------------------------------------------------


def refused(capsys: Any, status: int, message: str, *args: str) -> str:
    assert quantize(*args) == status
    captured = capsys.readouterr()
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_refuses_a_model_that_is_not_a_directory(capsys: Any, tmp_path: Path) -> None:
    refused(capsys, 2, "is not a directory", str(tmp_path / "nope"), "--recipe", NVFP4, "--dry-run")


def test_refuses_a_model_without_config(capsys: Any, tmp_path: Path) -> None:
    refused(capsys, 2, "has no config.json", str(tmp_path), "--recipe", NVFP4, "--dry-run")


def test_refuses_a_model_without_tokenizer(capsys: Any, tmp_path: Path, model_dir: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((model_dir / name).read_bytes())
    refused(
        capsys, 2, "has no tokenizer", str(bare), "--recipe", NVFP4, "--out", str(tmp_path / "o")
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (None, ".txt", "missing.txt: no such file"),
        (
            '{"text": "ok"}\n{"text": 3}\n',
            ".jsonl",
            'data.jsonl:2:1: expected an object with a "text"',
        ),
        ('{"text": "ok"}\n{"text": "a",}\n', ".jsonl", "data.jsonl:2:14: invalid JSON"),
        ("\n  \n", ".txt", "data.txt:1:1: no samples"),
        (b"\xff\xfe", ".txt", "not UTF-8 text"),
    ],
    ids=["missing", "no-text", "bad-json", "empty", "binary"],
)
def test_refuses_unreadable_calibration_data(
    capsys: Any, tmp_path: Path, model_dir: Path, content: Any, suffix: str, message: str
) -> None:
    data = tmp_path / ("missing" + suffix if content is None else "data" + suffix)
    if isinstance(content, bytes):
        data.write_bytes(content)
    elif content is not None:
        data.write_text(content)
    out = tmp_path / "out"
    refused(
        capsys,
        2,
        message,
        str(model_dir),
        "--recipe",
        NVFP4,
        "--calib",
        str(data),
        "--out",
        str(out),
    )
    assert not out.exists()


def test_refuses_a_non_empty_output_directory(capsys: Any, tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    refused(
        capsys,
        2,
        "is not empty (pass --overwrite",
        str(model_dir),
        "--recipe",
        NVFP4,
        "--out",
        str(tmp_path),
    )
    refused(capsys, 2, "--out DIR is required", str(model_dir), "--recipe", NVFP4)


def test_refuses_an_invalid_recipe(capsys: Any, tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "out"
    refused(
        capsys, 1, "not found", str(model_dir), "--recipe", "general/ptq/nope", "--out", str(out)
    )
    assert not out.exists()


def test_refuses_a_recipe_the_runtime_cannot_run(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    from qrecipe.runtime.flatbuild import FP8, disable, entry, make_flat

    flat = make_flat([disable("*"), entry("*_proj.weight_quantizer", {**FP8, "learn_amax": True})])
    path = tmp_path / "learned.flat.json"
    path.write_text(qrecipe.pretty_json(flat))
    out = tmp_path / "out"
    err = refused(
        capsys,
        1,
        "learn_amax (trainable amax) is not supported",
        str(model_dir),
        "--recipe",
        str(path),
        "--out",
        str(out),
    )
    assert "/quantize/quant_cfg/1/cfg" in err
    assert not out.exists()


def test_refuses_formats_the_export_cannot_express(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    out = tmp_path / "out"
    err = refused(
        capsys,
        1,
        "cannot export to modelopt: weight quantizer INT8 per-channel(axis 0)",
        str(model_dir),
        "--recipe",
        "general/ptq/int8_per_channel-kv_fp8",
        "--out",
        str(out),
    )
    assert "/quantize/quant_cfg/" in err
    assert "model.layers.0.self_attn.q_proj" in err
    assert not out.exists()


def test_refuses_schemes_compressed_tensors_cannot_hold(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    flat = qrecipe.resolve("general/ptq/w4a8_int4_awq-kv_fp8")
    flat["quantize"]["algorithm"] = {"method": "max"}
    flat["fingerprint"] = qrecipe.fingerprint(flat)
    path = tmp_path / "w4a8.flat.json"
    path.write_text(qrecipe.pretty_json(flat))
    out = tmp_path / "out"
    refused(
        capsys,
        1,
        "cannot export to compressed-tensors: W4A8_AWQ layers have no",
        str(model_dir),
        "--recipe",
        str(path),
        "--export-format",
        "compressed-tensors",
        "--out",
        str(out),
    )
    assert not out.exists()


def test_refuses_awq_for_compressed_tensors_before_calibration(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    out = tmp_path / "out"
    err = refused(
        capsys,
        1,
        "awq_lite gives INT4 layers not preceded by a normalization",
        str(model_dir),
        "--recipe",
        "general/ptq/w4a16_int4_awq",
        "--export-format",
        "compressed-tensors",
        "--dry-run",
    )
    assert "/quantize/algorithm" in err
    assert "has no per-input-channel scale" in err
    assert not out.exists()


def test_refuses_fused_layers_in_different_formats(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    from qrecipe.runtime.flatbuild import FP8, disable, entry, make_flat
    from qrecipe.runtime.flatbuild import NVFP4 as NVFP4_ATTRIBUTES

    flat = make_flat(
        [
            disable("*"),
            entry("*q_proj.[wi]*_quantizer", FP8),
            entry("*k_proj.[wi]*_quantizer", NVFP4_ATTRIBUTES),
            entry("*v_proj.[wi]*_quantizer", NVFP4_ATTRIBUTES),
        ]
    )
    path = tmp_path / "mixed.flat.json"
    path.write_text(qrecipe.pretty_json(flat))
    out = tmp_path / "out"
    refused(
        capsys,
        1,
        "layers that share an input (fused by serving engines) are quantized in different",
        str(model_dir),
        "--recipe",
        str(path),
        "--out",
        str(out),
    )
    assert not out.exists()


def test_refuses_a_recipe_that_quantizes_nothing(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    from qrecipe.runtime.flatbuild import disable, make_flat

    path = tmp_path / "none.flat.json"
    path.write_text(qrecipe.pretty_json(make_flat([disable("*")])))
    refused(
        capsys,
        1,
        "quantizes no layer of this model",
        str(model_dir),
        "--recipe",
        str(path),
        "--dry-run",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_refuses_cuda_without_a_gpu(capsys: Any, tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "out"
    refused(
        capsys,
        2,
        "--device cuda: no CUDA device",
        str(model_dir),
        "--recipe",
        NVFP4,
        "--device",
        "cuda",
        "--out",
        str(out),
    )
    assert not out.exists()


def test_refuses_a_bad_shard_size(capsys: Any, tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "out"
    refused(
        capsys,
        2,
        "--max-shard-size: shard size 'lots'",
        str(model_dir),
        "--recipe",
        NVFP4,
        "--max-shard-size",
        "lots",
        "--out",
        str(out),
    )
    assert not out.exists()


def test_refuses_bad_numbers(capsys: Any, model_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        quantize(str(model_dir), "--recipe", NVFP4, "--calib-samples", "0", "--dry-run")
    assert exit_info.value.code == 2
    assert "--calib-samples: 0 is not positive" in capsys.readouterr().err


def test_says_what_to_install_without_the_runtime(tmp_path: Path, model_dir: Path) -> None:
    # torch made unimportable: the command must explain, not fail with a traceback.
    code = (
        "import sys; sys.modules['torch'] = None; from qrecipe.cli import main; "
        f"raise SystemExit(main(['quantize', {str(model_dir)!r}, '--recipe', {NVFP4!r}, "
        f"'--out', {str(tmp_path / 'out')!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "qrecipe quantize needs PyTorch and transformers" in result.stderr
    assert "torch is missing" in result.stderr
    assert "qrecipe[quantize]" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_a_layerwise_checkpoint_of_another_run(
    capsys: Any, tmp_path: Path, model_dir: Path
) -> None:
    import copy

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    manifest = {
        "format": "qrecipe layerwise calibration checkpoint",
        "version": 1,
        "recipe": "sha256:" + "0" * 64,
        "completed": 1,
    }
    (checkpoints / "manifest.json").write_text(json.dumps(manifest))
    flat = copy.deepcopy(qrecipe.resolve("general/ptq/w4a16_int4_awq"))
    flat["quantize"]["algorithm"] = {
        "method": "gptq",
        "layerwise": {"enable": True, "checkpoint_dir": str(checkpoints)},
    }
    flat["fingerprint"] = qrecipe.fingerprint(flat)
    path = tmp_path / "gptq.flat.json"
    path.write_text(qrecipe.pretty_json(flat))
    out = tmp_path / "out"
    refused(capsys, 2, "belongs to another recipe fingerprint", str(model_dir), "--recipe",
            str(path), "--out", str(out))  # fmt: skip
    assert not out.exists()
    assert json.loads((checkpoints / "manifest.json").read_text()) == manifest
