"""Round trips: quantize -> export -> load, on tiny Llama-style and MoE models (fixed seeds).

The loaded model's logits equal the fake-quantized model's bit for bit for NVFP4, FP8 and
W4A8 (float32 models): NVFP4 because its arithmetic is the same, FP8 because the checkpoint
carries each calibrated amax (``qrecipe-amax.json``), from which the loaded model rebuilds
fake quantization's scales. Without that file (checkpoints other tools write), FP8 and INT4
load from the stored ``amax / 448`` and ``amax / 7`` while fake quantization multiplies by
``1 / (448 / amax)``: the dequantized weights differ by at most one float32 rounding, which
the tests bound exactly, and with FP8 activations a value on an FP8 rounding boundary can
round the other way, so those logits are compared within a bound. INT4 blocks keep that
difference always (their amax is not carried).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import load_bench

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import qrecipe  # noqa: E402
from checkpoint_models import MODELS, tokens  # noqa: E402
from qrecipe.runtime import apply  # noqa: E402
from qrecipe.runtime.export import export  # noqa: E402
from qrecipe.runtime.load import CheckpointError, load  # noqa: E402
from qrecipe.runtime.packed import PackedWeight, packed_weights, weight_bytes  # noqa: E402
from qrecipe.runtime.placement import weights  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.filterwarnings("ignore::UserWarning")]


def recipe(name: str) -> dict[str, Any]:
    return qrecipe.resolve(name)


def quantize_export_load(
    kind: str, name: str, tmp_path: Path, dtype: torch.dtype = torch.float32, **options: Any
) -> tuple[Any, Any, torch.Tensor]:
    model = MODELS[kind](dtype)
    batch = tokens()
    flat = recipe(name)
    apply(model, flat, forward_loop=lambda m: m(batch), progress=False)
    export(model, tmp_path / "ckpt", flat, progress=False, **options)
    return model, load(tmp_path / "ckpt"), batch


def logits(model: Any, batch: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(batch).logits


EXACT = {
    "llama-nvfp4-kv_fp8": ("llama", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
    "llama-bf16-nvfp4-kv_fp8": ("llama", "general/ptq/nvfp4_default-kv_fp8", torch.bfloat16),
    "llama-nvfp4_mlp_weight_only": ("llama", "general/ptq/nvfp4_mlp_weight_only", torch.float32),
    "moe-nvfp4-kv_fp8": ("moe", "general/ptq/nvfp4_default-kv_fp8", torch.float32),
    "moe-nvfp4_experts_only": ("moe", "general/ptq/nvfp4_experts_only-kv_fp8", torch.float32),
    "llama-fp8-kv_fp8": ("llama", "general/ptq/fp8_default-kv_fp8", torch.float32),
    "llama-fp8_qkvo-nvfp4_mlp": ("llama", "general/ptq/fp8_qkvo-nvfp4_mlp", torch.float32),
    "llama-w4a8-kv_fp8": ("llama", "general/ptq/w4a8_int4_awq-kv_fp8", torch.float32),
    "moe-fp8-kv_fp8": ("moe", "general/ptq/fp8_default-kv_fp8", torch.float32),
    "moe-fp8_qkvo-nvfp4_mlp": ("moe", "general/ptq/fp8_qkvo-nvfp4_mlp", torch.float32),
}


@pytest.mark.parametrize("case", list(EXACT))
def test_round_trip_is_bit_exact(case: str, tmp_path: Path) -> None:
    kind, name, dtype = EXACT[case]
    model, loaded, batch = quantize_export_load(kind, name, tmp_path, dtype)
    expected = logits(model, batch)
    got = logits(loaded, batch)
    assert got.dtype == dtype
    assert torch.equal(got, expected)
    assert packed_weights_of(loaded), "the loaded model computes from packed weights"


CLOSE = {
    "llama-fp8-kv_fp8": ("llama", "general/ptq/fp8_default-kv_fp8"),
    "llama-fp8_qkvo-nvfp4_mlp": ("llama", "general/ptq/fp8_qkvo-nvfp4_mlp"),
    "llama-int4_blockwise": ("llama", "general/ptq/int4_blockwise_weight_only"),
    "llama-w4a8-kv_fp8": ("llama", "general/ptq/w4a8_int4_awq-kv_fp8"),
    "moe-fp8_qkvo-nvfp4_mlp": ("moe", "general/ptq/fp8_qkvo-nvfp4_mlp"),
}


def packed_weights_of(model: Any) -> dict[str, PackedWeight]:
    found = {}
    for name, module in model.named_modules():
        for tensor, packed in packed_weights(module).items():
            found[f"{name}.{tensor}"] = packed
    return found


@pytest.mark.parametrize("case", list(CLOSE))
def test_round_trip_from_the_scales_within_one_rounding(case: str, tmp_path: Path) -> None:
    """Loaded from the checkpoint's scales alone (no qrecipe-amax.json), as a checkpoint
    another tool wrote."""
    kind, name = CLOSE[case]
    model, exact, batch = quantize_export_load(kind, name, tmp_path)
    (tmp_path / "ckpt" / "qrecipe-amax.json").unlink()
    loaded = load(tmp_path / "ckpt")
    if case == "llama-fp8-kv_fp8":  # an activation on an FP8 rounding boundary, here
        assert not torch.equal(logits(loaded, batch), logits(exact, batch))
    packed = packed_weights_of(loaded)
    assert packed
    for full_name, weight in packed.items():
        layer_name, tensor = full_name.rsplit(".", 1)
        layer = model.get_submodule(layer_name)
        if tensor != "weight":
            continue  # fused experts: checked through the logits
        expected = weights.quantize_weight(layer.weight_quantizer, layer.weight)
        got = weight.dequantize(torch.float32)
        # code x (amax / 448) against code x (1 / (448 / amax)): one float32 rounding apart.
        bound = expected.abs() * 2.0**-22
        assert ((got - expected).abs() <= bound).all(), full_name
    expected_logits, got_logits = logits(model, batch), logits(loaded, batch)
    assert (got_logits - expected_logits).abs().max() <= 0.02 * expected_logits.abs().max()
    agree = (got_logits.argmax(-1) == expected_logits.argmax(-1)).float().mean()
    assert agree >= 0.95


def test_loaded_weights_take_the_packed_size(tmp_path: Path) -> None:
    model, loaded, _ = quantize_export_load("llama", "general/ptq/nvfp4_default-kv_fp8", tmp_path)
    checkpoint = tmp_path / "ckpt" / "model.safetensors"
    packed = sum(w.packed_bytes() for w in packed_weights_of(loaded).values())
    # NVFP4: half a byte per weight, one E4M3 byte per 16 weights.
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][:-1]  # not lm_head
    elements = sum(m.weight.numel() for m in linears)
    assert packed == elements // 2 + elements // 16 + 4 * len(linears)
    at_rest = weight_bytes(loaded)
    # Everything else: embeddings, head and norms in float32, rotary tables, scales.
    assert at_rest <= checkpoint.stat().st_size
    assert at_rest < 0.35 * weight_bytes(MODELS["llama"]())
    assert not any(
        isinstance(p, torch.nn.Parameter) and p.dim() == 2 and p.shape[-1] == 128
        for n, p in loaded.named_parameters()
        if "layers" in n
    )


def test_loads_the_checkpoint_modelopt_writes(tmp_path: Path) -> None:
    mtq = pytest.importorskip("modelopt.torch.quantization")
    from modelopt.torch.export import export_hf_checkpoint

    from test_modelopt_compat import int_block_keys

    flat = recipe("general/ptq/nvfp4_default-kv_fp8")
    batch = tokens()
    theirs = MODELS["moe"]()
    mtq.quantize(theirs, int_block_keys(flat["quantize"]), lambda m: m(batch))
    export_hf_checkpoint(theirs, export_dir=tmp_path / "modelopt")
    assert not (tmp_path / "modelopt" / "recipe.flat.json").exists()
    from_modelopt = load(tmp_path / "modelopt")

    ours = MODELS["moe"]()
    apply(ours, flat, forward_loop=lambda m: m(batch), progress=False)
    export(ours, tmp_path / "qrecipe", flat, progress=False)
    assert torch.equal(logits(from_modelopt, batch), logits(ours, batch))


def test_sharded_checkpoint_round_trip(tmp_path: Path) -> None:
    model, loaded, batch = quantize_export_load(
        "llama", "general/ptq/nvfp4_default-kv_fp8", tmp_path, max_shard_size="100KB"
    )
    directory = tmp_path / "ckpt"
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 3
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert not (directory / "model.safetensors").exists()
    assert all((directory / shard).stat().st_size <= 140_000 for shard in shards[:-1])
    assert torch.equal(logits(loaded, batch), logits(model, batch))


def test_checkpoint_carries_its_recipe(tmp_path: Path) -> None:
    model, _, _ = quantize_export_load("llama", "general/ptq/fp8_default-kv_fp8", tmp_path)
    flat = qrecipe.load_flat(tmp_path / "ckpt")
    assert flat == recipe("general/ptq/fp8_default-kv_fp8")
    assert qrecipe.fingerprint(flat) == flat["fingerprint"]
    del model


def test_triton_backend_gives_the_same_logits(tmp_path: Path) -> None:
    model, loaded, batch = quantize_export_load("llama", "general/ptq/fp8_qkvo-nvfp4_mlp", tmp_path)
    expected = logits(loaded, batch)
    on_triton = load(tmp_path / "ckpt", backend="triton")
    assert torch.equal(logits(on_triton, batch), expected)
    del model


# -- refusals ---------------------------------------------------------------------------------


def test_refuses_a_directory_without_a_config(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no readable config\.json"):
        load(tmp_path)


def test_refuses_an_unquantized_checkpoint(tmp_path: Path) -> None:
    MODELS["llama"]().save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="has no quantization_config"):
        load(tmp_path)


def test_refuses_an_unknown_quant_method(tmp_path: Path) -> None:
    quantize_export_load("llama", "general/ptq/fp8_default-kv_fp8", tmp_path)
    config_path = tmp_path / "ckpt" / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_config"]["quant_method"] = "gptq"
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="quant_method 'gptq' is not one of"):
        load(tmp_path / "ckpt")


def test_refuses_a_checkpoint_of_another_shape(tmp_path: Path) -> None:
    quantize_export_load("llama", "general/ptq/fp8_default-kv_fp8", tmp_path)
    config_path = tmp_path / "ckpt" / "config.json"
    config = json.loads(config_path.read_text())
    config["intermediate_size"] = 384
    config_path.write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"mlp\.\w+_proj: packed weight of shape \(128, 256\)"
    ):
        load(tmp_path / "ckpt")


def test_refuses_a_checkpoint_with_a_missing_tensor(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    quantize_export_load("llama", "general/ptq/fp8_default-kv_fp8", tmp_path)
    path = tmp_path / "ckpt" / "model.safetensors"
    tensors = load_file(path)
    del tensors["model.norm.weight"]
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match=r"the checkpoint lacks model\.norm\.weight"):
        load(tmp_path / "ckpt")


def test_awq_checkpoint_round_trip(tmp_path: Path) -> None:
    """AWQ lite: q/k/v and gate/up share their mean pre_quant_scale, folded into the RMSNorm
    before them; o_proj and down_proj keep their own, which the loaded layers apply."""
    from safetensors.torch import load_file

    model, loaded, batch = quantize_export_load("llama", "general/ptq/w4a16_int4_awq", tmp_path)
    stored = load_file(tmp_path / "ckpt" / "model.safetensors")
    kept = {name for name in stored if name.endswith("pre_quant_scale")}
    assert kept == {
        f"model.layers.{i}.{layer}.pre_quant_scale"
        for i in range(2)
        for layer in ("self_attn.o_proj", "mlp.down_proj")
    }
    down = model.model.layers[0].mlp.down_proj
    assert torch.equal(
        stored["model.layers.0.mlp.down_proj.pre_quant_scale"], down.input_quantizer.pre_quant_scale
    )
    assert model.model.layers[0].self_attn.q_proj.input_quantizer.pre_quant_scale is None
    norm = stored["model.layers.0.input_layernorm.weight"]
    assert torch.equal(norm, model.model.layers[0].input_layernorm.weight.detach())
    assert not torch.equal(norm, torch.ones_like(norm))  # the scale is folded in

    loaded_down = loaded.model.layers[0].mlp.down_proj
    x = torch.randn(2, 3, 256, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        got = loaded_down(x)
    weight = packed_weights(loaded_down)["weight"].dequantize(torch.float32)
    smoothing = stored["model.layers.0.mlp.down_proj.pre_quant_scale"]
    assert torch.equal(got, torch.nn.functional.linear(x * smoothing, weight))
    expected, result = logits(model, batch), logits(loaded, batch)
    assert (result - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_refuses_fused_layers_where_only_some_carry_awq_scales(tmp_path: Path) -> None:
    from qrecipe.runtime import UnsupportedRecipeError

    model = MODELS["llama"]()
    flat = recipe("general/ptq/int4_blockwise_weight_only")
    apply(model, flat, progress=False)
    attention = model.model.layers[0].self_attn
    attention.q_proj.input_quantizer.pre_quant_scale = torch.full((128,), 2.0)
    with pytest.raises(UnsupportedRecipeError, match="where only some carry an AWQ"):
        export(model, tmp_path / "ckpt", flat, progress=False)
    assert not (tmp_path / "ckpt").exists()


def test_loading_allocates_no_full_precision_weight(tmp_path: Path) -> None:
    """Every byte allocated while loading is the checkpoint's, up to a few small tensors.

    The bound (16 KB beyond the checkpoint) is half the smallest quantized weight's float32
    size, so a full-precision copy of any quantized weight, at any moment of the load, breaks
    it; the unquantized model is more than three times the checkpoint.
    """
    from torch.profiler import ProfilerActivity, profile

    model, _, _ = quantize_export_load("llama", "general/ptq/nvfp4_default-kv_fp8", tmp_path)
    smallest = min(m.weight.numel() * 4 for m in model.modules() if isinstance(m, torch.nn.Linear))
    checkpoint = (tmp_path / "ckpt" / "model.safetensors").stat().st_size
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        loaded = load(tmp_path / "ckpt")
    allocated = sum(e.cpu_memory_usage for e in profiler.events() if e.cpu_memory_usage > 0)
    assert allocated <= checkpoint + smallest // 2
    assert weight_bytes(MODELS["llama"]()) > 3 * checkpoint
    assert not any(p.is_meta for p in loaded.parameters())
    assert not any(b.is_meta for b in loaded.buffers())


def test_mixtral_round_trip_keeps_the_published_names(tmp_path: Path) -> None:
    """Mixtral's experts are written as its published checkpoints name them
    (``block_sparse_moe.experts.<i>.w1/w2/w3``, the router ``block_sparse_moe.gate``) and
    loaded back into the fused experts of the model in memory."""
    from safetensors.torch import load_file

    model, loaded, batch = quantize_export_load(
        "mixtral", "general/ptq/nvfp4_default-kv_fp8", tmp_path
    )
    names = set(load_file(tmp_path / "ckpt" / "model.safetensors"))
    prefix = "model.layers.1.block_sparse_moe"
    for leaf in ("w1", "w2", "w3"):
        assert {
            f"{prefix}.experts.3.{leaf}.weight",
            f"{prefix}.experts.3.{leaf}.weight_scale",
        } <= names
    assert f"{prefix}.gate.weight" in names
    assert not any(".mlp." in name or "gate_proj" in name for name in names)
    quantization = json.loads((tmp_path / "ckpt" / "hf_quant_config.json").read_text())
    excluded = quantization["quantization"]["exclude_modules"]
    assert any("block_sparse_moe.gate" in name for name in excluded), excluded
    assert torch.equal(logits(loaded, batch), logits(model, batch))
    assert packed_weights(loaded.model.layers[1].mlp.experts)


def test_mixtral_checkpoint_of_modelopt_loads(tmp_path: Path) -> None:
    mtq = pytest.importorskip("modelopt.torch.quantization")
    from modelopt.torch.export import export_hf_checkpoint

    from test_modelopt_compat import int_block_keys

    flat = recipe("general/ptq/nvfp4_default-kv_fp8")
    batch = tokens()
    theirs = MODELS["mixtral"]()
    mtq.quantize(theirs, int_block_keys(flat["quantize"]), lambda m: m(batch))
    export_hf_checkpoint(theirs, export_dir=tmp_path / "modelopt")
    ours = MODELS["mixtral"]()
    apply(ours, flat, forward_loop=lambda m: m(batch), progress=False)
    export(ours, tmp_path / "qrecipe", flat, progress=False)  # gate and up share scales now
    assert torch.equal(logits(load(tmp_path / "modelopt"), batch), logits(ours, batch))


def test_reads_each_tensor_into_memory_of_its_own(tmp_path: Path) -> None:
    """A tensor that loading replaces frees its bytes: no tensor shares the shard's memory."""
    from safetensors.torch import load_file, save_file

    from qrecipe.runtime.export.reader import iter_tensors

    tensors = {
        "a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "b": torch.tensor(2.5, dtype=torch.bfloat16),
        "c": torch.tensor([1, -2], dtype=torch.int32).to(torch.float8_e4m3fn),
        "d": torch.tensor([[7, 255]], dtype=torch.uint8),
        "empty": torch.zeros(0, 4),
    }
    save_file(tensors, tmp_path / "x.safetensors", metadata={"format": "pt"})
    read = dict(iter_tensors(tmp_path / "x.safetensors"))
    expected = load_file(tmp_path / "x.safetensors")
    assert read.keys() == expected.keys()
    for name, tensor in expected.items():
        assert (read[name].dtype, read[name].shape) == (tensor.dtype, tensor.shape), name
        assert torch.equal(
            read[name].reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)
        )
    for tensor in read.values():
        storage = tensor.untyped_storage()
        assert storage.nbytes() == tensor.numel() * tensor.element_size()


def test_refuses_a_truncated_shard(tmp_path: Path) -> None:
    quantize_export_load("llama", "general/ptq/fp8_default-kv_fp8", tmp_path)
    path = tmp_path / "ckpt" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: .+ ends past the end"):
        load(tmp_path / "ckpt")


def test_compressed_tensors_int4_loads_one_layer_at_a_time(tmp_path: Path) -> None:
    """INT4 codes are repacked while loading, one layer at a time: the peak stays within two
    bytes per weight of the largest layer (half its float32 size) above the checkpoint."""
    model, _, _ = quantize_export_load(
        "llama",
        "general/ptq/int4_blockwise_weight_only",
        tmp_path,
        export_format="compressed-tensors",
    )
    largest = max(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    checkpoint = (tmp_path / "ckpt" / "model.safetensors").stat().st_size
    peak, _ = load_bench("memory").tensor_memory_peak(lambda: load(tmp_path / "ckpt"))
    assert peak <= checkpoint + 2 * largest
