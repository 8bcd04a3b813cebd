"""The modelopt export against ModelOpt 0.47's own exporter on the same model and calibration.

Both quantize the same tiny model (same seed, same calibration tokens) with the same flat recipe
(its own calibration algorithm: max, or AWQ lite for the INT4 AWQ recipes): ModelOpt with
``mtq.quantize`` and ``export_hf_checkpoint``, qrecipe with ``apply`` and ``export``. AWQ
checkpoints cover the averaging of the fused layers' ``pre_quant_scale`` and its folding into
the RMSNorm before them. Every tensor must have the same name, dtype, shape and bytes, and
``hf_quant_config.json`` and the ``quantization_config`` of ``config.json`` the same content
(the producer aside). ModelOpt's exporter runs on the CPU for every scheme used here.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    mtq = pytest.importorskip("modelopt.torch.quantization")
    from modelopt.torch.export import export_hf_checkpoint

from safetensors.torch import load_file  # noqa: E402

import qrecipe  # noqa: E402
from checkpoint_models import MODELS, tokens  # noqa: E402
from qrecipe.runtime import apply  # noqa: E402
from qrecipe.runtime.export import export  # noqa: E402
from test_modelopt_compat import int_block_keys  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.slow, pytest.mark.filterwarnings("ignore")]


CASES = {
    "llama-fp8-kv_fp8": ("llama", "general/ptq/fp8_default-kv_fp8", torch.float32),
    "llama-nvfp4-kv_fp8": ("llama", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
    "llama-fp8_qkvo-nvfp4_mlp": ("llama", "general/ptq/fp8_qkvo-nvfp4_mlp", torch.float32),
    "llama-int4_blockwise": ("llama", "general/ptq/int4_blockwise_weight_only", torch.float32),
    "llama-w4a16_awq": ("llama", "general/ptq/w4a16_int4_awq", torch.float32),
    "llama-bf16-w4a16_awq": ("llama", "general/ptq/w4a16_int4_awq", torch.bfloat16),
    "llama-w4a8_awq-kv_fp8": ("llama", "general/ptq/w4a8_int4_awq-kv_fp8", torch.float32),
    "llama-nvfp4_weight_only": ("llama", "general/ptq/nvfp4_mlp_weight_only", torch.float32),
    "llama-bf16-fp8": ("llama", "general/ptq/fp8_default-kv_fp8", torch.bfloat16),
    "llama-bf16-nvfp4": ("llama", "general/ptq/nvfp4_default-kv_fp8", torch.bfloat16),
    "moe-nvfp4-kv_fp8": ("moe", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
    "moe-fp8_qkvo-nvfp4_mlp": ("moe", "general/ptq/fp8_qkvo-nvfp4_mlp", torch.float32),
    # Mixtral's published names (block_sparse_moe.experts.<i>.w1/w2/w3), as ModelOpt writes.
    "mixtral-nvfp4-kv_fp8": ("mixtral", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
    "mixtral-fp8_qkvo-nvfp4_mlp": ("mixtral", "general/ptq/fp8_qkvo-nvfp4_mlp", torch.float32),
}


def exports(case: str, tmp_path: Path) -> tuple[Path, Path]:
    kind, name, dtype = CASES[case]
    flat = qrecipe.resolve(name)
    batch = tokens()

    theirs = MODELS[kind](dtype)
    mtq.quantize(theirs, int_block_keys(copy.deepcopy(flat["quantize"])), lambda m: m(batch))
    export_hf_checkpoint(theirs, export_dir=tmp_path / "modelopt")

    ours = MODELS[kind](dtype)
    apply(ours, flat, forward_loop=lambda m: m(batch), progress=False)
    export(ours, tmp_path / "qrecipe", flat, progress=False)
    return tmp_path / "modelopt", tmp_path / "qrecipe"


def bytes_of(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous().reshape(-1).view(torch.uint8)


def without_producer(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "producer"}


@pytest.mark.parametrize("case", list(CASES))
def test_same_checkpoint_as_modelopt(case: str, tmp_path: Path) -> None:
    theirs_dir, ours_dir = exports(case, tmp_path)
    theirs = load_file(theirs_dir / "model.safetensors")
    ours = load_file(ours_dir / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name, expected in theirs.items():
        got = ours[name]
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), name
        assert torch.equal(bytes_of(got), bytes_of(expected)), f"{name}: values differ"
    assert any(t.dtype in (torch.uint8, torch.float8_e4m3fn) for t in ours.values())

    hf_theirs = json.loads((theirs_dir / "hf_quant_config.json").read_text())
    hf_ours = json.loads((ours_dir / "hf_quant_config.json").read_text())
    assert without_producer(hf_ours) == without_producer(hf_theirs)
    assert hf_ours["producer"] == {"name": "qrecipe", "version": qrecipe.__version__}

    config_theirs = json.loads((theirs_dir / "config.json").read_text())
    config_ours = json.loads((ours_dir / "config.json").read_text())
    quant_theirs = config_theirs.pop("quantization_config")
    quant_ours = config_ours.pop("quantization_config")
    assert without_producer(quant_ours) == without_producer(quant_theirs)
    assert quant_ours["quant_method"] == "modelopt"
    assert config_ours == config_theirs
