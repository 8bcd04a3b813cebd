"""Calibration algorithms on their own terms: exact removal, properties, refusals, the report.

ModelOpt cannot run static NVFP4 (GPTQ's built-in recipe, the FP8 scale sweep) on the CPU;
those are checked here against direct computations and properties that must hold.
"""

from __future__ import annotations

import copy
import fnmatch
import gc
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import qrecipe  # noqa: E402
from qrecipe.runtime import (  # noqa: E402
    UnsupportedRecipeError,
    apply,
    class_names,
    iter_quantizers,
    remove,
)
from qrecipe.runtime.calibration.gptq import column_quantizer  # noqa: E402
from qrecipe.runtime.calibration.headroom import BlockHistogram, headroom_amax  # noqa: E402
from qrecipe.runtime.calibration.mse import fp8_scale_candidates, group_sum  # noqa: E402
from qrecipe.runtime.flatbuild import disable, entry, make_flat  # noqa: E402
from qrecipe.runtime.kernels import fake_quant, reduce_amax  # noqa: E402
from qrecipe.runtime.quantizer import TensorQuantizer, iter_stages  # noqa: E402
from tiny_models import batches, loop_over, tiny_bert, tiny_llama, tiny_moe  # noqa: E402

pytestmark = pytest.mark.runtime


@pytest.fixture(autouse=True)
def _release_quantized_models():
    # Quantized attention modules keep the shared attention functions wrapped while they live;
    # collect this test's models so that later tests find the functions as transformers has them.
    yield
    gc.collect()


DATA = batches()
LOOP = loop_over(DATA)
NVFP4_STATIC = {
    "num_bits": [2, 1],
    "block_sizes": {"-1": 16, "type": "static", "scale_bits": [4, 3]},
}
INT4_BLOCK = {"num_bits": 4, "block_sizes": {"-1": 16, "type": "static"}}


def with_algorithm(name: str, algorithm: dict[str, Any]) -> dict[str, Any]:
    flat = copy.deepcopy(qrecipe.resolve(name))
    flat["quantize"]["algorithm"] = algorithm
    flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(DATA[0]).logits


# -- removal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "algorithm"),
    [
        ("general/ptq/int8_smoothquant-kv_fp8", None),
        ("general/ptq/w4a16_int4_awq", {"method": "awq_full", "alpha_step": 0.5}),
        ("general/ptq/w4a16_int4_awq", {"method": "gptq", "block_size": 16}),
    ],
    ids=["smoothquant", "awq_full", "gptq"],
)
def test_weight_changing_algorithms_remove_exactly(recipe, algorithm):
    model = tiny_llama()
    before = state(model)
    reference = logits(model)
    flat = qrecipe.resolve(recipe) if algorithm is None else with_algorithm(recipe, algorithm)
    apply(model, flat, forward_loop=LOOP, progress=False)
    changed = [k for k, v in before.items() if not torch.equal(v, model.state_dict()[k])]
    assert any(k.endswith("proj.weight") for k in changed)
    remove(model)
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert torch.equal(logits(model), reference)


def test_failed_calibration_restores_changed_weights():
    model = tiny_llama()
    before = state(model)
    calls = 0

    def breaks_in_the_search(m):
        nonlocal calls
        calls += 1
        LOOP(m)
        if calls == 2:  # awq's second pass, after weights were kept and scales set
            raise RuntimeError("data source went away")

    flat = with_algorithm("general/ptq/w4a16_int4_awq", {"method": "awq_full"})
    with pytest.raises(RuntimeError, match="went away"):
        apply(model, flat, forward_loop=breaks_in_the_search, progress=False)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_missing_forward_loop_is_a_clear_error_for_data_driven_algorithms():
    model = tiny_llama()
    for algorithm in ({"method": "smoothquant"}, {"method": "gptq"}):
        flat = with_algorithm("general/ptq/int8_smoothquant-kv_fp8", algorithm)
        with pytest.raises(ValueError, match="forward_loop"):
            apply(model, flat, progress=False)
        assert not list(iter_quantizers(model))


# -- AWQ and SmoothQuant: what they are for -----------------------------------------------------


def output_error(model: torch.nn.Module, reference: torch.Tensor) -> float:
    return float((logits(model) - reference).square().mean())


def test_awq_lowers_int4_output_error_against_max():
    reference = logits(tiny_llama())
    by_max = tiny_llama()
    apply(
        by_max, with_algorithm("general/ptq/w4a16_int4_awq", {"method": "max"}), forward_loop=LOOP
    )
    by_awq = tiny_llama()
    report = apply(by_awq, qrecipe.resolve("general/ptq/w4a16_int4_awq"), forward_loop=LOOP)
    assert output_error(by_awq, reference) < output_error(by_max, reference)
    record = report["model.layers.0.mlp.down_proj.input_quantizer"]
    assert record.algorithm is not None
    assert 0.0 <= record.algorithm["awq_alpha"] <= 1.0
    assert record.algorithm["pre_quant_scale"]["min"] > 0


def test_pre_quant_scale_and_folding_keep_the_product():
    model = tiny_llama()
    layer = model.model.layers[0].mlp.up_proj
    original = layer.weight.detach().clone()
    apply(model, qrecipe.resolve("general/ptq/int8_smoothquant-kv_fp8"), forward_loop=LOOP)
    scale = layer.input_quantizer.pre_quant_scale
    assert scale is not None
    assert scale.shape == (layer.in_features,)
    x = torch.randn(3, layer.in_features)
    folded = (x * scale) @ layer.weight.detach().T
    torch.testing.assert_close(folded, x @ original.T, rtol=1e-4, atol=1e-5)
    # the weight quantizer's amax is that of the folded weight
    weight_quantizer = layer.weight_quantizer
    assert torch.equal(
        weight_quantizer.amax, reduce_amax(layer.weight.detach(), weight_quantizer.fmt)
    )


# -- GPTQ -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    [
        INT4_BLOCK,
        {"num_bits": 8, "axis": 0},
        {"num_bits": [4, 3]},
        NVFP4_STATIC,
        {"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]}},
    ],
    ids=["int4-block", "int8-channel", "fp8-tensor", "nvfp4-static", "nvfp4-dynamic"],
)
def test_gptq_column_quantizer_equals_whole_matrix_quantization(attributes):
    weight = torch.randn(24, 40, generator=torch.Generator().manual_seed(0))
    quantizer = TensorQuantizer(entry("x", attributes)["cfg"])
    quantizer.amax = reduce_amax(weight, quantizer.fmt) * 0.9
    if attributes is NVFP4_STATIC:
        quantizer.global_amax = quantizer.amax.amax() * 1.5
    column = column_quantizer(quantizer, weight.shape)
    whole = quantizer(weight)
    for index in range(weight.shape[1]):
        assert torch.equal(column(weight, index), whole[:, index]), index


def test_gptq_static_nvfp4_rounds_onto_the_grid_with_less_output_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe saves per-layer checkpoints in a relative directory
    flat = qrecipe.resolve("general/ptq/nvfp4_default-kv_none-gptq")
    plain = tiny_llama()
    apply(plain, with_algorithm("general/ptq/nvfp4_default-kv_none-gptq", {"method": "max"}),
          forward_loop=LOOP, progress=False)  # fmt: skip
    model = tiny_llama()
    report = apply(model, flat, forward_loop=LOOP, progress=False)
    manifest = tmp_path / flat["quantize"]["algorithm"]["layerwise"]["checkpoint_dir"]
    assert (manifest / "manifest.json").is_file()
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        layer = model.get_submodule(name)
        weight = layer.weight.detach()
        assert torch.equal(layer.weight_quantizer(weight), weight)  # already on the grid
        record = report[f"{name}.weight_quantizer"].algorithm
        assert record is not None
        assert 0 < record["gptq_relative_error"] < 1
    reference = logits(tiny_llama())
    assert output_error(model, reference) < output_error(plain, reference)


# -- MSE and the FP8 scale sweep ----------------------------------------------------------------


def test_fp8_scale_candidates_are_every_positive_e4m3_value():
    codes = torch.arange(0, 128, dtype=torch.uint8).view(torch.float8_e4m3fn).float()
    expected = codes[torch.isfinite(codes) & (codes > 0)] / 448.0
    assert torch.equal(fp8_scale_candidates(), expected)


def test_fp8_scale_sweep_picks_the_best_fp8_block_scale_per_block():
    model = tiny_llama()
    flat = qrecipe.resolve("general/ptq/nvfp4_mlp_only_mse-kv_fp8_cast")
    report = apply(model, flat, forward_loop=LOOP, progress=False)
    layer = model.model.layers[0].mlp.gate_proj
    quantizer = layer.weight_quantizer
    weight = layer.weight.detach().float()
    global_amax = quantizer.global_amax
    assert global_amax is not None
    # gate and up share one per-tensor amax (siblings fused at export), the larger of theirs
    up = model.model.layers[0].mlp.up_proj
    assert torch.equal(up.weight_quantizer.global_amax, global_amax)
    both = torch.cat([layer.weight.detach().abs().flatten(), up.weight.detach().abs().flatten()])
    assert torch.equal(global_amax, both.max().float())
    # each block's amax is the per-tensor amax times an FP8 value over 448 ...
    ratios = quantizer.amax / global_amax * 448.0
    fp8 = fp8_scale_candidates() * 448.0
    assert torch.isin(ratios, fp8).all()
    # ... the best one: brute force over every candidate for a few blocks
    fmt = quantizer.fmt
    for row, block in [(0, 0), (5, 1), (17, 0)]:
        errors = []
        for candidate in fp8_scale_candidates():
            amax = torch.full_like(quantizer.amax, float(global_amax * candidate))
            q = fake_quant(weight, fmt, amax, global_amax=global_amax)
            errors.append(group_sum((weight - q).square(), fmt)[row, block])
        best = fp8_scale_candidates()[int(torch.argmin(torch.stack(errors)))]
        assert quantizer.amax[row, block] == global_amax * best
    assert report[f"{'model.layers.0.mlp.gate_proj'}.weight_quantizer"].algorithm is not None
    # quantizers the sweep does not apply to keep max calibration
    attention = model.model.layers[0].self_attn.q_proj.weight_quantizer
    assert not attention.enabled


def test_mse_multipliers_never_raise_the_weight_error():
    recipe = [disable("*"), entry("*weight_quantizer", INT4_BLOCK)]
    by_max, by_mse = tiny_llama(), tiny_llama()
    apply(by_max, make_flat(recipe), progress=False)
    report = apply(by_mse, make_flat(recipe, algorithm={"method": "mse"}), progress=False)
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        weight = by_mse.get_submodule(name).weight.detach()
        errors = [
            (m.get_submodule(name).weight_quantizer(weight) - weight).square().sum()
            for m in (by_max, by_mse)
        ]
        assert errors[1] < errors[0]
        assert report[f"{name}.weight_quantizer"].algorithm["mse_multiplier"]["min"] > 0


# -- nvfp4_act_headroom -----------------------------------------------------------------------------


def test_headroom_amax_from_the_block_histogram():
    histogram = BlockHistogram(16)
    # 100 blocks: 99 of amax 1 and one of 1000; each block is 16 values with one at its amax
    x = torch.zeros(100, 16)
    x[:, 3] = 1.0
    x[42, 7] = 1000.0
    histogram(TensorQuantizer(), x)
    amax, details = headroom_amax(histogram, anchor_percentile=1, upper_percentile=100, rho=64)
    bin_centre = 2.0 ** (-40 + (256 + 0.5) * 80 / 512)  # log2(1) = 0: the middle bin, 256
    assert details["upper"] == 1000.0
    assert details["anchor"] == pytest.approx(bin_centre)
    assert amax is not None
    assert float(amax) == pytest.approx(max(64 * bin_centre, 1000.0))
    no_headroom, details = headroom_amax(histogram, 1, 100, rho=2)
    assert details["headroom"] is False
    assert float(no_headroom) == 1000.0


# -- layer by layer -----------------------------------------------------------------------------------


def test_layer_by_layer_max_equals_whole_model_max():
    flat = qrecipe.resolve("general/ptq/nvfp4_experts_only-kv_fp8")
    by_layer = with_algorithm(
        "general/ptq/nvfp4_experts_only-kv_fp8", {"method": "max", "layerwise": {"enable": True}}
    )
    whole, layered = tiny_moe(), tiny_moe()
    apply(whole, flat, forward_loop=LOOP, progress=False)
    report = apply(layered, by_layer, forward_loop=LOOP, progress=False)
    assert report.calibration_batches == len(DATA)
    pairs = zip(iter_quantizers(whole), iter_quantizers(layered), strict=True)
    checked = 0
    for (name, mine), (_, theirs) in pairs:
        for a, b in zip(iter_stages(mine), iter_stages(theirs), strict=True):
            assert (a.amax is None) == (b.amax is None), name
            if a.amax is not None:
                assert torch.equal(a.amax, b.amax), name
                checked += 1
    assert checked > 10


def test_layer_by_layer_lets_go_of_inputs_and_quantized_weights_of_layers_done():
    import weakref

    from qrecipe.runtime.placement import weights

    model = tiny_llama(layers=4)
    inputs: dict[int, list[weakref.ref[torch.Tensor]]] = {}
    alive_at_last_layer: list[int] = []

    def remember(index: int) -> Any:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            hidden = args[0] if args else kwargs["hidden_states"]
            if hidden.device.type != "meta":  # skipped layers pass placeholders along
                inputs.setdefault(index, []).append(weakref.ref(hidden))
            if index == 3:
                gc.collect()
                alive_at_last_layer.extend(
                    i for i in (0, 1) for ref in inputs.get(i, []) if ref() is not None
                )

        return hook

    for index, layer in enumerate(model.model.layers):
        layer.register_forward_pre_hook(remember(index), with_kwargs=True)
    flat = with_algorithm(
        "general/ptq/w4a16_int4_awq", {"method": "gptq", "layerwise": {"enable": True}}
    )
    apply(model, flat, forward_loop=LOOP, progress=False, cache_weights=True)
    assert inputs.keys() == {0, 1, 2, 3}
    assert not alive_at_last_layer  # layers 0 and 1 are done: their inputs are gone
    decoder = {id(q) for name, q in iter_quantizers(model) if ".layers." in name}
    assert not any(id(q) in decoder for q in weights._WEIGHT_CACHE)


def test_layer_by_layer_refuses_a_model_without_decoder_layers():
    model = tiny_bert()
    before = state(model)
    flat = with_algorithm(
        "huggingface/bert/ptq/fp8_default", {"method": "max", "layerwise": {"enable": True}}
    )
    with pytest.raises(ValueError, match="no decoder layers"):
        apply(model, flat, forward_loop=LOOP, progress=False)
    assert not list(iter_quantizers(model))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "message", "pointer"),
    [
        ({"method": "smoothquant", "alpha": 1.5}, "alpha", "/quantize/algorithm/alpha"),
        (
            {"method": "gptq", "layerwise": {"enable": True, "calib_mutates_weights": False}},
            "changes weights",
            "/quantize/algorithm/layerwise",
        ),
        (
            {"method": "max", "layerwise": {"enable": True, "resume": True}},
            "resume",
            "/quantize/algorithm/layerwise",
        ),
        (
            {"method": "nvfp4_act_headroom", "weight_scale_algorithm": {"method": "local_hessian"}},
            "local_hessian",
            "/quantize/algorithm/weight_scale_algorithm",
        ),
        ({"method": "nvfp4_act_headroom", "rho": 30000}, "rho", "/quantize/algorithm/rho"),
        ({"method": "awq_lite", "alpha_step": 0}, "alpha_step", "/quantize/algorithm/alpha_step"),
        (
            {"method": "max", "shared_states": {"weight_global_amax": {"patterns": ["("]}}},
            "invalid regex",
            "/quantize/algorithm/shared_states",
        ),
    ],
)
def test_bad_algorithm_options_are_refused_before_any_change(algorithm, message, pointer):
    model = tiny_llama()
    before = state(model)
    flat = with_algorithm("general/ptq/fp8_default-kv_fp8", algorithm)
    with pytest.raises(UnsupportedRecipeError, match=message) as info:
        apply(model, flat, forward_loop=LOOP)
    assert info.value.pointer == pointer
    assert not list(iter_quantizers(model))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# -- every built-in recipe --------------------------------------------------------------------------


def expected_enabled(model: torch.nn.Module, flat: dict[str, Any]) -> set[str]:
    """Enabled quantizers by the recipe's own words: the last entry matching each name decides."""
    names = [name for name, _ in iter_quantizers(model)]
    enabled = set()
    for name in names:
        per_expert = "_weight_quantizers." in name
        owner = model.get_submodule(name.rsplit(".", 2 if per_expert else 1)[0])
        aliases = {name}
        if per_expert:  # per-expert quantizers also answer to the name without index and plural
            aliases.add(name.rsplit(".", 1)[0].removesuffix("s"))
        state_on = True  # quantizers no entry matches keep the default (enabled)
        for item in flat["quantize"]["quant_cfg"]:
            if not any(fnmatch.fnmatchcase(a, item["quantizer_name"]) for a in aliases):
                continue
            if item.get("parent_class") and item["parent_class"] not in class_names(owner):
                continue
            cfg = item.get("cfg")
            enable = bool(item.get("enable", True))
            if cfg is not None:
                stages = cfg if isinstance(cfg, list) else [cfg]
                enable = enable and any(stage.get("enable", True) for stage in stages)
            state_on = enable
        if state_on:
            enabled.add(name)
    return enabled


MODELS = {"llama": tiny_llama, "moe": tiny_moe, "bert": tiny_bert}


def models_for(name: str) -> list[str]:
    if name.startswith("huggingface/bert/"):
        return ["bert"]
    if "layerwise" in name or "gptq" in name:
        return ["llama", "moe"]  # decoder layers; BERT's encoder layers are not found by name
    return ["llama", "moe", "bert"]


BUILTINS = [info.name for info in qrecipe.list_recipes()]
CASES = [(recipe, kind) for recipe in BUILTINS for kind in models_for(recipe)]


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "kind"), CASES, ids=[f"{k}:{r}" for r, k in CASES])
def test_every_builtin_recipe_applies(recipe, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # recipes with layer-by-layer checkpoints write them here
    model = MODELS[kind]()
    flat = qrecipe.resolve(recipe)
    report = apply(model, flat, forward_loop=LOOP, progress=False)
    enabled = {q.name for q in report.enabled}
    assert enabled == expected_enabled(model, flat)
    assert report.timings["total"] > 0
    remove(model)
