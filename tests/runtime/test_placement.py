"""Quantizer placement with the reference's names: linear layers, KV cache, fused MoE experts."""

from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402
from transformers import (  # noqa: E402
    LlamaConfig,
    LlamaForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)
from transformers.models.llama import modeling_llama  # noqa: E402

from qrecipe.runtime import apply, class_names, iter_quantizers, remove  # noqa: E402
from qrecipe.runtime.flatbuild import FP8, INT8_PER_CHANNEL, disable, entry, make_flat  # noqa: E402
from qrecipe.runtime.placement import plan  # noqa: E402

pytestmark = pytest.mark.runtime


def tiny_llama(attn_implementation: str = "eager") -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    config._attn_implementation = attn_implementation
    return LlamaForCausalLM(config).eval()


def tiny_qwen3_moe() -> Qwen3MoeForCausalLM:
    torch.manual_seed(0)
    config = Qwen3MoeConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=64,
    )
    return Qwen3MoeForCausalLM(config).eval()


IDS = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))


def loop(model):
    model(IDS)


KV_FP8 = make_flat([disable("*"), entry("*[kv]_bmm_quantizer", FP8)])


def test_llama_quantizer_names():
    names = {s.name for owner in plan(tiny_llama()) for s in owner.slots}
    for expected in (
        "model.layers.0.self_attn.q_proj.weight_quantizer",
        "model.layers.0.self_attn.q_proj.input_quantizer",
        "model.layers.0.self_attn.q_proj.output_quantizer",
        "model.layers.1.mlp.down_proj.weight_quantizer",
        "model.layers.0.self_attn.k_bmm_quantizer",
        "model.layers.0.self_attn.v_bmm_quantizer",
        "model.layers.1.self_attn.q_bmm_quantizer",
        "lm_head.weight_quantizer",
        "model.embed_tokens.weight_quantizer",
        "model.embed_tokens.output_quantizer",
    ):
        assert expected in names
    # integer indices cannot be quantized; RMSNorm is not a torch.nn class
    assert "model.embed_tokens.input_quantizer" not in names
    assert not any("norm" in n for n in names)


def test_planning_changes_nothing():
    model = tiny_llama()
    before = [n for n, _ in model.named_modules()]
    plan(model)
    assert [n for n, _ in model.named_modules()] == before


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_kv_cache_quantizers_change_keys_and_values(implementation):
    model = tiny_llama(implementation)
    with torch.no_grad():
        reference = model(IDS).logits
    report = apply(model, KV_FP8, forward_loop=loop, progress=False)
    assert {q.name for q in report.enabled} == {
        f"model.layers.{i}.self_attn.{kv}_bmm_quantizer" for i in (0, 1) for kv in "kv"
    }
    seen = {}
    for layer in (0, 1):
        attention = model.model.layers[layer].self_attn
        for kv in "kv":
            quantizer = getattr(attention, f"{kv}_bmm_quantizer")
            assert quantizer.amax is not None
            assert quantizer.amax.item() > 0

            def spy(module, args, output, key=(layer, kv)):
                seen[key] = (args[0].detach().clone(), output.detach().clone())

            quantizer.register_forward_hook(spy)
    with torch.no_grad():
        logits = model(IDS).logits
    assert set(seen) == {(i, kv) for i in (0, 1) for kv in "kv"}
    head_dim = 32 // 4
    for states, quantized in seen.values():
        # (batch, kv heads, sequence, head dim): the states as they enter attention
        assert states.shape == (2, 2, 12, head_dim)
        assert not torch.equal(states, quantized)
        torch.testing.assert_close(states, quantized, atol=0.1, rtol=0.1)
    assert not torch.equal(logits, reference)
    remove(model)
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, reference)


def test_attention_functions_are_restored_after_remove():
    original_eager = modeling_llama.eager_attention_forward
    interface = modeling_llama.ALL_ATTENTION_FUNCTIONS
    original_sdpa = interface["sdpa"]
    eager, sdpa = tiny_llama("eager"), tiny_llama("sdpa")
    apply(eager, KV_FP8, forward_loop=loop, progress=False)
    apply(sdpa, KV_FP8, forward_loop=loop, progress=False)
    assert modeling_llama.eager_attention_forward is not original_eager
    assert interface["sdpa"] is not original_sdpa
    remove(eager)
    # the other model still needs the patch
    assert interface["sdpa"] is not original_sdpa
    remove(sdpa)
    assert modeling_llama.eager_attention_forward is original_eager
    assert interface["sdpa"] is original_sdpa


def test_other_models_are_unaffected_by_kv_patching():
    quantized_model, plain = tiny_llama(), tiny_llama()
    with torch.no_grad():
        reference = plain(IDS).logits
    apply(quantized_model, KV_FP8, forward_loop=loop, progress=False)
    try:
        with torch.no_grad():
            assert torch.equal(plain(IDS).logits, reference)
    finally:
        remove(quantized_model)


def test_kv_quantizers_survive_pickling():
    model = tiny_llama()
    apply(model, KV_FP8, forward_loop=loop, progress=False)
    with torch.no_grad():
        expected = model(IDS).logits
    buffer = io.BytesIO()
    torch.save(model, buffer)
    remove(model)  # also takes the attention patch away
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(loaded(IDS).logits, expected)
    remove(loaded)


def test_fused_moe_experts_get_per_expert_quantizers():
    model = tiny_qwen3_moe()
    with torch.no_grad():
        reference = model(IDS).logits
    flat = make_flat(
        [
            disable("*"),
            entry("*weight_quantizer", INT8_PER_CHANNEL),
            entry("*input_quantizer", FP8),
            disable("*lm_head*"),
        ]
    )
    report = apply(model, flat, forward_loop=loop, progress=False)
    experts = model.model.layers[0].mlp.experts
    prefix = "model.layers.0.mlp.experts"
    names = {q.name for q in report.enabled}
    for i in range(4):
        assert f"{prefix}.gate_up_proj_weight_quantizers.{i}" in names
        assert f"{prefix}.down_proj_weight_quantizers.{i}" in names
    assert f"{prefix}.gate_up_proj_input_quantizer" in names
    assert f"{prefix}.down_proj_input_quantizer" in names
    assert report[f"{prefix}.gate_up_proj_weight_quantizers.2"].parent_class == "Qwen3MoeExperts"

    # per-expert, per-channel amax: one row per output channel of that expert's slice
    amaxes = [q.amax for q in experts.gate_up_proj_weight_quantizers]
    for index, amax in enumerate(amaxes):
        assert amax.numel() == 2 * 16
        expected = experts.gate_up_proj.detach()[index].abs().amax(dim=1)
        torch.testing.assert_close(amax.flatten(), expected)
    assert not torch.equal(amaxes[0], amaxes[1])
    down = experts.down_proj_weight_quantizers[3].amax
    assert down.numel() == 32
    torch.testing.assert_close(down.flatten(), experts.down_proj.detach()[3].abs().amax(dim=1))
    assert experts.down_proj_input_quantizer.amax is not None

    with torch.no_grad():
        logits = model(IDS).logits
    assert not torch.equal(logits, reference)
    assert model.config._experts_implementation == "grouped_mm"  # switched back after the call
    remove(model)
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, reference)
    assert torch.nn.functional.linear is torch._C._nn.linear


def test_expert_quantizers_match_singular_pattern_and_parent_class():
    model = tiny_qwen3_moe()
    flat = make_flat(
        [
            disable("*"),
            entry("*experts.gate_up_proj_weight_quantizer", FP8, parent_class="Qwen3MoeExperts"),
            entry("*down_proj_weight_quantizers.1", FP8),
        ]
    )
    report = apply(model, flat, progress=False)
    enabled = {q.name for q in report.enabled}
    prefix = "model.layers.0.mlp.experts"
    assert enabled == {f"{prefix}.gate_up_proj_weight_quantizers.{i}" for i in range(4)} | {
        f"{prefix}.down_proj_weight_quantizers.1"
    }
    assert len(list(iter_quantizers(model))) == len(report.quantizers)


def test_norm_pool_and_activation_layers_get_input_quantizers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.LeakyReLU(), nn.MaxPool2d(2))
    names = {s.name for owner in plan(model) for s in owner.slots}
    assert {
        "1.input_quantizer",
        "2.input_quantizer",
        "3.input_quantizer",
        "0.weight_quantizer",
    } <= names
    flat = make_flat(
        [
            entry("*", FP8),
            disable("*", parent_class="nn.BatchNorm2d"),
            disable("*", parent_class="nn.LeakyReLU"),
        ]
    )
    x = torch.randn(2, 3, 8, 8)
    report = apply(model.eval(), flat, forward_loop=lambda m: m(x), progress=False)
    assert not report["1.input_quantizer"].enabled
    assert not report["2.input_quantizer"].enabled
    assert report["3.input_quantizer"].enabled
    assert report["0.output_quantizer"].enabled  # cfg entries enable output quantizers too


def test_class_names():
    names = class_names(nn.Linear(2, 2))
    assert "nn.Linear" in names
    assert "Linear" not in names
    llama = tiny_llama()
    attention = class_names(llama.model.layers[0].self_attn)
    assert {"LlamaAttention", "hf.LlamaAttention"} <= attention
    assert "transformers.models.llama.modeling_llama.LlamaAttention" in attention
