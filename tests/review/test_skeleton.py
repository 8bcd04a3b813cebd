"""Models built from config.json on the meta device: every quantizer, as apply places them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import qrecipe  # noqa: E402
from qrecipe.review import ModelLoadError, load_model  # noqa: E402
from qrecipe.runtime import apply, remove  # noqa: E402

pytestmark = pytest.mark.runtime

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def decoder_count(c: dict, attention_linears: int, mlp_per_layer) -> int:
    """Embedding (2) + lm_head (3) + per layer: q/k/v bmm (3) and 3 per attention linear."""
    layers = range(c["num_hidden_layers"])
    return 5 + sum(3 + 3 * attention_linears + mlp_per_layer(i) for i in layers)


EXPECTED = {
    "llama-3-8b": lambda c: decoder_count(c, 4, lambda i: 9),
    "llama-3-70b": lambda c: decoder_count(c, 4, lambda i: 9),
    # Fused experts: one input quantizer per projection, one weight quantizer per expert.
    "mixtral-8x7b": lambda c: decoder_count(c, 4, lambda i: 2 + 2 * c["num_local_experts"]),
    "qwen3-30b-a3b": lambda c: decoder_count(c, 4, lambda i: 2 + 2 * c["num_experts"]),
    # MLA attention has five projections; the first layers are dense, the rest have routed
    # experts and a shared expert.
    "deepseek-v3": lambda c: decoder_count(
        c,
        5,
        lambda i: 9 if i < c["first_k_dense_replace"] else 2 + 2 * c["n_routed_experts"] + 9,
    ),
    # Six linears, two LayerNorms and q/k/v per layer; three embeddings and a LayerNorm; the
    # masked-LM head's dense, LayerNorm and decoder.
    "bert-base-uncased": lambda c: c["num_hidden_layers"] * (18 + 4 + 3) + 8 + 8,
    # in/x/dt/out projections and the convolution per layer; no attention at all.
    "mamba-130m": lambda c: c["num_hidden_layers"] * 15 + 2 + 3,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_quantizer_of_a_real_architecture(name):
    model = load_model(CONFIGS / f"{name}.json")
    assert len(model.slots) == EXPECTED[name](config(name))
    assert len({slot.name for slot in model.slots}) == len(model.slots)
    assert model.architecture == config(name)["architectures"][0]
    assert model.generates == (name != "bert-base-uncased")


def test_a_model_directory_is_read_through_its_config(tmp_path):
    (tmp_path / "config.json").write_text((CONFIGS / "llama-3-8b.json").read_text())
    assert [s.name for s in load_model(tmp_path).slots][:3] == [
        "model.embed_tokens.output_quantizer",
        "model.embed_tokens.weight_quantizer",
        "model.layers.0.self_attn.q_bmm_quantizer",
    ]


TINY = {
    "llama": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "qwen3_moe": {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 64,
        "moe_intermediate_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "num_experts": 4,
        "num_experts_per_tok": 2,
    },
}


@pytest.mark.parametrize("kind", sorted(TINY))
def test_names_and_decisions_equal_those_of_apply_on_the_real_model(kind, tmp_path):
    """The skeleton (meta, no weights) and apply (random weights) agree quantizer by quantizer."""
    file = tmp_path / "config.json"
    file.write_text(json.dumps(TINY[kind]))
    flat = qrecipe.resolve("general/ptq/fp8_qkvo-nvfp4_mlp")
    decided = load_model(file).decide(flat["quantize"]["quant_cfg"])
    torch.manual_seed(0)
    real = getattr(transformers, TINY[kind]["architectures"][0])(
        transformers.AutoConfig.for_model(**TINY[kind])
    )
    uncalibrated = {**flat, "quantize": {**flat["quantize"], "algorithm": None}}
    uncalibrated["fingerprint"] = qrecipe.fingerprint(uncalibrated)
    report = apply(real, uncalibrated, progress=False)
    try:
        applied = [(q.name, q.enabled, q.decided_by, q.configured_by) for q in report.quantizers]
        planned = [(s.slot.name, s.enabled, s.decided_by, s.configured_by) for s in decided.states]
        assert planned == applied
        formats = {q.name: q.format for q in report.quantizers if q.enabled}
        assert {s.slot.name: s.format for s in decided.states if s.enabled} == formats
        assert decided.matched == [e.matched for e in report.entries]
    finally:
        remove(real)


def test_nothing_is_allocated_for_the_weights():
    model = load_model(CONFIGS / "llama-3-70b.json")
    assert len(model.slots) == 1925  # 70 billion parameters, and no storage for any of them


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (None, "no such model directory or config file"),
        ({}, "the directory has no config.json"),
        ('{"model_type": "llama",\n "hidden_size": }', "config.json:2:17: not valid JSON"),
        ('["llama"]', "a model configuration is a JSON object"),
        ('{"hidden_size": 8}', "no 'model_type'"),
        ('{"model_type": "no-such-architecture"}', "is not one transformers"),
    ],
)
def test_unusable_models_are_refused_in_one_line(tmp_path, write, message):
    target = tmp_path / "model"
    if isinstance(write, dict):
        target.mkdir()
    elif write is not None:
        target.mkdir()
        (target / "config.json").write_text(write)
    with pytest.raises(ModelLoadError) as caught:
        load_model(target)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
