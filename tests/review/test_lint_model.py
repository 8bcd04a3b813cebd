"""The lint rules that need a model, on real architectures built from their config.json."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import qrecipe
from helpers import write_tree
from qrecipe.review import ModelSkeleton, lint, load_model, read_recipe

pytestmark = pytest.mark.runtime

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"

HEAD = """\
imports:
  fp8: configs/numerics/fp8
  nvfp4: configs/numerics/nvfp4
  base_disable_all: configs/ptq/units/base_disable_all
metadata:
  recipe_type: ptq
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
"""
FP8_EVERYWHERE = """\
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
    - quantizer_name: '*input_quantizer'
      cfg:
        $import: fp8
"""


@cache
def model(name: str) -> ModelSkeleton:
    return load_model(CONFIGS / f"{name}.json")


def findings(tmp_path, entries: str, model_name: str, *, head: str = HEAD):
    write_tree(tmp_path, {"r.yaml": head + entries})
    return lint(read_recipe(tmp_path / "r.yaml"), model(model_name))


def test_an_entry_matching_nothing_gets_the_closest_real_names(tmp_path):
    found = findings(
        tmp_path,
        FP8_EVERYWHERE + "    - {quantizer_name: '*q_prj*', enable: false}\n",
        "llama-3-8b",
    )
    ((d),) = found
    assert (d.code, d.line, d.column) == ("unmatched-entry", 17, 7)
    assert d.message == "entry 3 ('*q_prj*') matches no quantizer of LlamaForCausalLM"
    assert d.hint.startswith("closest names: model.layers.{0..31}.self_attn.q_proj.")


def test_a_parent_class_the_model_lacks_is_named(tmp_path):
    entries = FP8_EVERYWHERE + "    - {quantizer_name: '*', parent_class: Linear, enable: false}\n"
    (d,) = findings(tmp_path, entries, "llama-3-8b")
    assert d.code == "unmatched-entry"
    assert d.hint == "the model has no layer of class Linear (torch classes are written nn.Linear)"


def test_a_parent_class_that_excludes_every_named_quantizer(tmp_path):
    entries = FP8_EVERYWHERE + (
        "    - {quantizer_name: '*q_proj*', parent_class: nn.Embedding, enable: false}\n"
    )
    (d,) = findings(tmp_path, entries, "llama-3-8b")
    assert d.message.endswith("the 96 it names are in nn.Linear layers")


def test_quantizers_no_entry_names_are_counted_once(tmp_path):
    head = HEAD.replace("    - $import: base_disable_all\n", "")
    found = findings(tmp_path, FP8_EVERYWHERE, "llama-3-8b", head=head)
    assert [d.code for d in found] == ["missing-base-disable", "undecided-quantizers"]
    undecided = found[1]
    assert undecided.message.startswith(
        "96 quantizer(s) of LlamaForCausalLM are named by no entry and stay enabled at the "
        "default 8-bit integer format: model.layers.{0..31}.self_attn.q_bmm_quantizer, "
    )
    assert (undecided.line, undecided.column) == (10, 5)


def test_q_k_v_with_different_formats_cannot_be_served(tmp_path):
    entries = (
        FP8_EVERYWHERE
        + "    - quantizer_name: '*q_proj.weight_quantizer'\n      cfg:\n        $import: nvfp4\n"
    )
    (d,) = findings(tmp_path, entries, "llama-3-8b")
    assert (d.code, d.line) == ("fused-group-mismatch", 17)  # the entry that made q_proj differ
    assert d.message == (
        "the q/k/v projections of model.layers.{0..31}.self_attn are one GEMM in serving "
        "engines, but their weight quantizers differ: "
        "q_proj: NVFP4 (16-block, E4M3 scales, dynamic); k_proj, v_proj: FP8 E4M3 per-tensor"
    )


def test_gate_and_up_switched_on_and_off_separately(tmp_path):
    entries = FP8_EVERYWHERE + "    - {quantizer_name: '*up_proj*', enable: false}\n"
    (weights, inputs) = findings(tmp_path, entries, "llama-3-8b")
    assert weights.code == inputs.code == "fused-group-mismatch"
    assert "gate/up projections of model.layers.{0..31}.mlp" in weights.message
    assert "gate_proj: FP8 E4M3 per-tensor; up_proj: off" in weights.message
    assert "input quantizers differ" in inputs.message


def test_experts_of_one_moe_layer_share_a_format(tmp_path):
    entries = FP8_EVERYWHERE + (
        "    - quantizer_name: '*experts.gate_up_proj_weight_quantizers.[0-3]'\n"
        "      cfg:\n        $import: nvfp4\n"
    )
    (d,) = findings(tmp_path, entries, "mixtral-8x7b")
    assert d.code == "fused-group-mismatch"
    assert d.message.startswith(
        "the expert gate_up_proj weights of model.layers.{0..31}.mlp.experts are one GEMM"
    )
    assert "experts.{0..3}: NVFP4" in d.message
    assert "experts.{4..7}: FP8 E4M3 per-tensor" in d.message


def test_kv_cache_settings_need_a_model_with_a_kv_cache(tmp_path):
    entries = FP8_EVERYWHERE + (
        "    - quantizer_name: '*[kv]_bmm_quantizer'\n      cfg:\n        $import: fp8\n"
    )
    (d,) = findings(tmp_path, entries, "mamba-130m")
    assert (d.code, d.line) == ("kv-cache-without-attention", 17)
    assert "MambaForCausalLM, which has no attention module with key/value quantizers" in d.message
    (d,) = findings(tmp_path, entries, "bert-base-uncased")
    assert "BertForMaskedLM, which does not generate and keeps no KV cache" in d.message
    assert findings(tmp_path, entries, "llama-3-8b") == []


def test_a_recipe_for_another_architecture_quantizes_nothing():
    found = lint(read_recipe("huggingface/bert/ptq/fp8_qkvo-nvfp4_mlp"), model("llama-3-8b"))
    assert [d.code for d in found] == ["nothing-quantized"]
    assert found[0].message == (
        "the recipe quantizes none of the 773 quantizers of LlamaForCausalLM"
    )


@pytest.mark.parametrize("model_name", ["llama-3-8b", "mixtral-8x7b", "bert-base-uncased"])
def test_builtin_recipes_are_servable_on_real_architectures(model_name):
    """No built-in recipe mixes formats inside a fused group, or names an unknown layer."""
    errors = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in qrecipe.list_recipes():
            found = lint(read_recipe(info.name), model(model_name))
            codes = {d.code for d in found} - {"duplicate-entry", "nothing-quantized"}
            if model_name == "bert-base-uncased":
                codes.discard("kv-cache-without-attention")  # general recipes carry KV settings
            if codes:
                errors[info.name] = sorted(codes)
    assert errors == {}
