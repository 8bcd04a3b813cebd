"""The compressed-tensors export, checked with the compressed-tensors package itself.

The package validates the ``quantization_config``, and its own compressors decompress every
quantized layer: FP8 and INT4 (pack-quantized) layers to exactly the weights
``qrecipe.runtime.load`` computes from the stored scales, NVFP4 layers to the same weights up
to the reciprocal global scale the layout stores (the package divides the block scale by
``weight_global_scale``, qrecipe multiplies by ``weight_scale_2``), at most one bfloat16
rounding apart. INT4 weights are one float32 rounding of the scale from the fake-quantized
model's. AWQ's input scales are refused. ``transformers`` loads the export through the
package's integration.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationConfig

from safetensors.torch import load_file  # noqa: E402

import qrecipe  # noqa: E402
from checkpoint_models import MODELS, tokens  # noqa: E402
from qrecipe.runtime import UnsupportedRecipeError, apply  # noqa: E402
from qrecipe.runtime.export import export  # noqa: E402
from qrecipe.runtime.load import load  # noqa: E402
from qrecipe.runtime.packed import packed_weights  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.filterwarnings("ignore")]

CASES = {
    "llama-fp8-kv_fp8": ("llama", "general/ptq/fp8_default-kv_fp8", torch.float32),
    "llama-bf16-nvfp4-kv_fp8": ("llama", "general/ptq/nvfp4_default-kv_fp8", torch.bfloat16),
    "llama-bf16-fp8_qkvo-nvfp4_mlp": ("llama", "general/ptq/fp8_qkvo-nvfp4_mlp", torch.bfloat16),
    "moe-nvfp4-kv_fp8": ("moe", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
    "llama-int4_blockwise": ("llama", "general/ptq/int4_blockwise_weight_only", torch.float32),
    "llama-bf16-int4_blockwise": (
        "llama",
        "general/ptq/int4_blockwise_weight_only",
        torch.bfloat16,
    ),
    "moe-int4_blockwise": ("moe", "general/ptq/int4_blockwise_weight_only", torch.float32),
    "mixtral-nvfp4-kv_fp8": ("mixtral", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
}


def exported(case: str, tmp_path: Path) -> tuple[Any, Path, torch.Tensor]:
    kind, name, dtype = CASES[case]
    model = MODELS[kind](dtype)
    batch = tokens()
    flat = qrecipe.resolve(name)
    apply(model, flat, forward_loop=lambda m: m(batch), progress=False)
    export(model, tmp_path / "ct", flat, export_format="compressed-tensors", progress=False)
    return model, tmp_path / "ct", batch


def layer_state(tensors: dict[str, torch.Tensor], layer: str) -> dict[str, torch.Tensor]:
    prefix = f"{layer}."
    return {
        k[len(prefix) :]: v
        for k, v in tensors.items()
        if k.startswith(prefix) and "." not in k[len(prefix) :]
    }


@pytest.mark.parametrize("case", list(CASES))
def test_the_package_decompresses_our_weights(case: str, tmp_path: Path) -> None:
    model, directory, _ = exported(case, tmp_path)
    config = json.loads((directory / "config.json").read_text())["quantization_config"]
    parsed = QuantizationConfig.model_validate(config)
    tensors = load_file(directory / "model.safetensors")
    # From the stored scales alone, as an engine computes (the exact amax would give the
    # fake-quantized FP8 weights, one float32 rounding of the scale away).
    (directory / "qrecipe-amax.json").unlink()
    loaded = load(directory)
    dtype = CASES[case][2]
    layers = {
        name: packed["weight"]
        for name, module in loaded.named_modules()
        if "weight" in (packed := packed_weights(module))
    }
    assert layers
    checked = 0
    for group in parsed.config_groups.values():
        compressor = BaseCompressor.get_value_from_registry(group.format)
        for layer, ours_packed in layers.items():
            if group.targets != ["Linear"] and layer not in group.targets:
                continue
            state = layer_state(tensors, layer)
            if group.format == "nvfp4-pack-quantized":
                assert {"weight_packed", "weight_scale", "weight_global_scale"} <= set(state)
            weight = compressor.decompress(state, group)["weight"].to(dtype)
            ours = ours_packed.dequantize(dtype)
            if group.format == "pack-quantized":
                assert state["weight_packed"].dtype == torch.int32
                assert torch.equal(state["weight_shape"], torch.tensor(ours.shape))
            if group.format in ("float-quantized", "pack-quantized"):
                # code x the stored float32 scale, in both.
                assert torch.equal(weight, ours), layer
            else:
                # The package decompresses NVFP4 in bfloat16: one bfloat16 rounding apart.
                bound = ours.abs().float() * 2.0**-8
                assert ((weight.float() - ours.float()).abs() <= bound).all(), layer
                if dtype == torch.bfloat16:
                    assert (weight != ours).float().mean() < 0.01, layer
            checked += 1
    assert checked == len(layers)
    del model


@pytest.mark.parametrize(
    "case", ["llama-fp8-kv_fp8", "llama-bf16-nvfp4-kv_fp8", "llama-bf16-int4_blockwise"]
)
def test_transformers_loads_the_export(case: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    _, directory, batch = exported(case, tmp_path)
    theirs = AutoModelForCausalLM.from_pretrained(directory, dtype=CASES[case][2])
    ours = load(directory)
    with torch.no_grad():
        expected = ours(batch).logits
        got = theirs(batch).logits
    assert got.isfinite().all()
    # transformers fake-quantizes activations with the package's own arithmetic.
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() >= 0.75


@pytest.mark.parametrize("case", ["moe-nvfp4-kv_fp8", "mixtral-nvfp4-kv_fp8"])
def test_round_trip_within_the_reciprocal_scales(case: str, tmp_path: Path) -> None:
    model, directory, batch = exported(case, tmp_path)
    if case.startswith("mixtral"):
        config = json.loads((directory / "config.json").read_text())["quantization_config"]
        assert "model.layers.0.block_sparse_moe.gate" in config["ignore"]
        names = set(load_file(directory / "model.safetensors"))
        assert "model.layers.0.block_sparse_moe.experts.2.w3.weight_packed" in names
    with torch.no_grad():
        expected = model(batch).logits
        got = load(directory)(batch).logits
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_int4_weights_within_one_rounding_of_fake_quantization(tmp_path: Path) -> None:
    """The package's INT4 weights against the fake-quantized model's: the checkpoint stores
    ``amax / 7``, fake quantization multiplies by ``1 / (7 / amax)``, one float32 rounding of
    the scale apart (and exactly the same codes)."""
    from qrecipe.runtime.placement import weights

    model, directory, batch = exported("llama-int4_blockwise", tmp_path)
    config = json.loads((directory / "config.json").read_text())["quantization_config"]
    assert config["format"] == "pack-quantized"
    group = QuantizationConfig.model_validate(config).config_groups["group_0"]
    assert (group.weights.strategy, group.weights.group_size) == ("group", 128)
    assert (group.weights.num_bits, group.weights.type, group.weights.symmetric) == (
        4,
        "int",
        True,
    )
    compressor = BaseCompressor.get_value_from_registry("pack-quantized")
    tensors = load_file(directory / "model.safetensors")
    compared = 0
    for name, module in model.named_modules():
        if f"{name}.weight_packed" not in tensors:
            continue
        weight = compressor.decompress(layer_state(tensors, name), group)["weight"]
        expected = weights.quantize_weight(module.weight_quantizer, module.weight)
        assert ((weight - expected).abs() <= expected.abs() * 2.0**-22).all(), name
        assert ((weight != expected).float().mean()) < 0.5, name
        compared += 1
    assert compared == 14
    with torch.no_grad():
        expected_logits = model(batch).logits
        got = load(directory)(batch).logits
    assert (got - expected_logits).abs().max() <= 1e-5 * expected_logits.abs().max()


def test_refuses_awq_scales_it_cannot_hold(tmp_path: Path) -> None:
    model = MODELS["llama"]()
    batch = tokens()
    flat = qrecipe.resolve("general/ptq/w4a16_int4_awq")
    apply(model, flat, forward_loop=lambda m: m(batch), progress=False)
    with pytest.raises(UnsupportedRecipeError) as caught:
        export(model, tmp_path / "ct", flat, export_format="compressed-tensors", progress=False)
    message = str(caught.value)
    assert "self_attn.o_proj carries an AWQ pre_quant_scale" in message
    assert "no per-input-channel scale" in message
    assert not (tmp_path / "ct").exists()


def test_refuses_nvfp4_blocks_other_than_16(tmp_path: Path) -> None:
    model = MODELS["llama"]()
    flat = qrecipe.resolve("general/ptq/nvfp4_mlp_weight_only")  # 32-value blocks
    apply(model, flat, progress=False)
    with pytest.raises(UnsupportedRecipeError, match="NVFP4 blocks of other than 16 values"):
        export(model, tmp_path / "ct", flat, export_format="compressed-tensors", progress=False)
    assert not (tmp_path / "ct").exists()
