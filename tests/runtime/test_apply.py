"""qrecipe.runtime.apply: quant_cfg semantics, refusals, remove, persistence, report."""

from __future__ import annotations

import io
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from torch import nn  # noqa: E402

import qrecipe  # noqa: E402
from qrecipe.runtime import (  # noqa: E402
    QuantReport,
    SequentialQuantizer,
    TensorQuantizer,
    UnsupportedRecipeError,
    apply,
    quantized,
    remove,
)
from qrecipe.runtime.flatbuild import FP8, INT8_PER_CHANNEL, disable, entry, make_flat  # noqa: E402
from qrecipe.runtime.kernels import QuantFormat, UnsupportedFormatError, fake_quant  # noqa: E402

pytestmark = pytest.mark.runtime


class MyLinear(nn.Linear):
    """A subclass: parent_class nn.Linear must still select it (isinstance semantics)."""


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(32, 32)
        self.mlp = MyLinear(32, 32)
        self.norm = nn.LayerNorm(32)

    def forward(self, x):
        return self.norm(self.mlp(torch.relu(self.q_proj(x))))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.conv = nn.Conv1d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.head(x)


def make_net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


IDS = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(0))


def loop(model):
    model(IDS[:2])
    model(IDS[2:])


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "modules": [(n, type(m)) for n, m in model.named_modules()],
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
        "repr": repr(model),
    }


def assert_same(before: dict, after: dict) -> None:
    assert before["modules"] == after["modules"]
    assert before["hooks"] == after["hooks"]
    assert before["repr"] == after["repr"]
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key


def fp8_recipe(*extra, algorithm="max"):
    return make_flat(
        [
            disable("*"),
            entry("*weight_quantizer", FP8),
            entry("*input_quantizer", FP8),
            disable("*", parent_class="nn.Embedding"),
            disable("*", parent_class="nn.LayerNorm"),
            *extra,
        ],
        algorithm=algorithm,
    )


def quantizer(model: nn.Module, name: str):
    return model.get_submodule(name)


# -- quant_cfg semantics -------------------------------------------------------------------------


def test_patterns_and_order_later_entries_win():
    model = make_net()
    flat = fp8_recipe(
        disable("*q_proj*"), entry("blocks.1.q_proj.weight_quantizer", INT8_PER_CHANNEL)
    )
    report = apply(model, flat, forward_loop=loop, progress=False)
    assert not quantizer(model, "blocks.0.q_proj.weight_quantizer").enabled
    assert not quantizer(model, "blocks.0.q_proj.input_quantizer").enabled
    last = quantizer(model, "blocks.1.q_proj.weight_quantizer")
    assert last.enabled
    assert last.attributes["num_bits"] == 8
    assert last.attributes["axis"] == 0
    assert report["blocks.1.q_proj.weight_quantizer"].decided_by == 6
    assert report["blocks.0.q_proj.weight_quantizer"].decided_by == 5
    assert report["blocks.0.mlp.weight_quantizer"].decided_by == 1
    assert (
        report["blocks.0.mlp.weight_quantizer"].format
        == QuantFormat.from_cfg(
            quantizer(model, "blocks.0.mlp.weight_quantizer").attributes
        ).describe()
    )
    # output quantizers only ever matched the leading '*' entry
    assert not quantizer(model, "head.output_quantizer").enabled


def test_parent_class_selects_direct_parent_and_subclasses():
    model = make_net()
    flat = make_flat(
        [
            disable("*"),
            entry("*", FP8, parent_class="nn.Linear"),
        ]
    )
    apply(model, flat, forward_loop=loop, progress=False)
    # MyLinear is an nn.Linear: selected; conv, layer norm and embedding are not.
    assert quantizer(model, "blocks.0.mlp.weight_quantizer").enabled
    assert quantizer(model, "blocks.0.q_proj.input_quantizer").enabled
    assert not quantizer(model, "conv.weight_quantizer").enabled
    assert not quantizer(model, "blocks.0.norm.input_quantizer").enabled
    assert not quantizer(model, "embed.weight_quantizer").enabled


def test_parent_class_plain_name_for_non_torch_classes():
    model = make_net()
    flat = make_flat([disable("*"), entry("*weight_quantizer", FP8, parent_class="MyLinear")])
    report = apply(model, flat, forward_loop=loop, progress=False)
    enabled = {q.name for q in report.enabled}
    assert enabled == {"blocks.0.mlp.weight_quantizer", "blocks.1.mlp.weight_quantizer"}
    assert report["blocks.0.mlp.weight_quantizer"].parent_class == "MyLinear"
    assert report["head.weight_quantizer"].parent_class == "nn.Linear"


def test_cfg_less_entry_only_toggles_enable():
    model = make_net()
    flat = fp8_recipe(disable("*weight_quantizer"), entry("*head.weight_quantizer", None))
    report = apply(model, flat, forward_loop=loop, progress=False)
    head = quantizer(model, "head.weight_quantizer")
    assert head.enabled
    assert head.attributes["num_bits"] == [4, 3]  # attributes kept from entry 1
    assert report["head.weight_quantizer"].configured_by == 1
    assert report["head.weight_quantizer"].decided_by == 6
    assert not quantizer(model, "conv.weight_quantizer").enabled
    assert quantizer(model, "conv.weight_quantizer").attributes["num_bits"] == [4, 3]


def test_cfg_replaces_every_attribute():
    model = make_net()
    flat = make_flat(
        [
            disable("*"),
            entry("*weight_quantizer", INT8_PER_CHANNEL),
            entry("*weight_quantizer", FP8),
        ]
    )
    apply(model, flat, forward_loop=loop, progress=False)
    attributes = quantizer(model, "head.weight_quantizer").attributes
    assert attributes["num_bits"] == [4, 3]
    assert attributes["axis"] is None  # not kept from the INT8 per-channel entry


def test_entry_enable_false_with_cfg_sets_attributes_but_disables():
    model = make_net()
    flat = make_flat([entry("*", FP8, enable=False)])
    apply(model, flat, forward_loop=loop, progress=False)
    head = quantizer(model, "head.weight_quantizer")
    assert not head.enabled
    assert head.attributes["num_bits"] == [4, 3]


def test_cfg_list_is_a_sequence_of_quantizers():
    model = make_net()
    flat = make_flat([disable("*"), entry("head.weight_quantizer", [INT8_PER_CHANNEL, FP8])])
    report = apply(model, flat, progress=False)
    seq = quantizer(model, "head.weight_quantizer")
    assert isinstance(seq, SequentialQuantizer)
    assert len(seq.stages) == 2
    assert "->" in report["head.weight_quantizer"].format
    weight = model.head.weight.detach()
    first, second = seq.stages
    expected = fake_quant(weight, first.fmt, amax=first.amax, backend="torch")
    expected = fake_quant(expected, second.fmt, amax=second.amax, backend="torch")
    assert torch.equal(seq(weight), expected)
    assert not torch.equal(seq(weight), first(weight))


# -- refusals leave the model untouched ---------------------------------------------------------


@pytest.mark.parametrize("method", ["local_hessian", "svdquant", "lsq"])
def test_unsupported_algorithm_is_refused_before_any_change(method):
    model = make_net()
    before = snapshot(model)
    with pytest.raises(UnsupportedRecipeError) as info:
        apply(model, fp8_recipe(algorithm={"method": method}), forward_loop=loop)
    message = str(info.value)
    assert method in message
    assert "max" in message
    assert "mse" in message
    assert info.value.pointer == "/quantize/algorithm/method"
    assert_same(before, snapshot(model))


def test_unsupported_algorithm_option_is_refused():
    model = make_net()
    before = snapshot(model)
    with pytest.raises(UnsupportedRecipeError, match="moe_calib_experts_ratio"):
        apply(model, fp8_recipe(algorithm={"method": "mse", "moe_calib_experts_ratio": 0.5}))
    with pytest.raises(UnsupportedRecipeError, match="supported:"):
        apply(model, fp8_recipe(algorithm={"method": "max", "bogus_option": 1}))
    assert_same(before, snapshot(model))


def unsupported_cfg() -> dict:
    """A schema-valid attribute object the kernels refuse (the first that is refused)."""
    candidates = [
        {"num_bits": [4, 3], "fake_quant": False},
        {"num_bits": [4, 3], "backend": "no_such_backend"},
        {"num_bits": 8, "block_sizes": {"-1": 7, "type": "static"}},
        {"num_bits": 13},
    ]
    for cfg in candidates:
        full = entry("x", cfg)["cfg"]
        try:
            QuantFormat.from_cfg(full)
        except UnsupportedFormatError:
            return cfg
    pytest.fail("the kernels accept every candidate; add an unsupported one")


def test_unsupported_format_is_refused_before_any_change():
    model = make_net()
    before = snapshot(model)
    flat = fp8_recipe(entry("*head.weight_quantizer", unsupported_cfg()))
    with pytest.raises(UnsupportedRecipeError) as info:
        apply(model, flat, forward_loop=loop)
    assert info.value.pointer == "/quantize/quant_cfg/5/cfg"
    assert "head.weight_quantizer" in str(info.value)
    assert_same(before, snapshot(model))


def test_unsupported_format_on_disabled_quantizer_is_fine():
    model = make_net()
    flat = fp8_recipe(entry("*head.weight_quantizer", unsupported_cfg(), enable=False))
    report = apply(model, flat, forward_loop=loop, progress=False)
    assert not report["head.weight_quantizer"].enabled


def test_histogram_calibrator_is_refused():
    model = make_net()
    before = snapshot(model)
    flat = fp8_recipe(entry("*head.input_quantizer", {**FP8, "calibrator": "histogram"}))
    with pytest.raises(UnsupportedRecipeError, match="histogram"):
        apply(model, flat, forward_loop=loop)
    assert_same(before, snapshot(model))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(fingerprint="sha256:" + "0" * 64),
        lambda d: d["quantize"]["quant_cfg"][1].pop("cfg"),
        lambda d: d["quantize"]["quant_cfg"][1]["cfg"].update(num_bits="eight"),
        lambda d: d["quantize"].update(algorithm="max"),
    ],
    ids=["fingerprint", "missing-key", "bad-num-bits", "bare-algorithm"],
)
def test_invalid_flat_documents_are_refused(mutate):
    model = make_net()
    before = snapshot(model)
    flat = fp8_recipe()
    mutate(flat)
    with pytest.raises(qrecipe.RecipeError):
        apply(model, flat, forward_loop=loop)
    assert_same(before, snapshot(model))


def test_invalid_json_text_is_refused():
    model = make_net()
    with pytest.raises(qrecipe.RecipeError):
        apply(model, '{"quantize": ')


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("recipe.yaml", "'recipe.yaml' is a recipe source"),
        ("general/ptq/fp8_default-kv_fp8", "not a flat recipe file (a built-in recipe name?)"),
        (".", "'.' is a recipe source"),
    ],
)
def test_a_recipe_source_is_refused_with_how_to_resolve_it(source, says):
    model = make_net()
    before = snapshot(model)
    with pytest.raises(ValueError, match="resolve it first") as caught:
        apply(model, source)
    message = str(caught.value)
    assert says in message
    assert f"resolve it first, e.g. apply(model, qrecipe.resolve({source!r}))" in message
    assert_same(before, snapshot(model))


def test_failed_calibration_restores_the_model():
    model = make_net()
    before = snapshot(model)

    def broken(m):
        m(IDS)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply(model, fp8_recipe(), forward_loop=broken, progress=False)
    assert_same(before, snapshot(model))


def test_applying_twice_is_refused():
    model = make_net()
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    with pytest.raises(ValueError, match="remove"):
        apply(model, fp8_recipe(), forward_loop=loop)


def test_flat_from_path_and_json_text(tmp_path):
    flat = fp8_recipe()
    path = tmp_path / "r.flat.json"
    path.write_text(json.dumps(flat))
    first = apply(make_net(), path, forward_loop=loop, progress=False)
    second = apply(make_net(), json.dumps(flat), forward_loop=loop, progress=False)
    assert first.to_dict()["quantizers"] == second.to_dict()["quantizers"]


# -- warnings -------------------------------------------------------------------------------------


def test_entries_that_match_nothing_are_reported():
    model = make_net()
    flat = fp8_recipe(
        disable("*lm_head*"),
        disable("*", parent_class="nn.BatchNorm2d"),
        disable("*", parent_class="Linear"),
    )
    report = apply(model, flat, forward_loop=loop, progress=False)
    text = "\n".join(report.warnings)
    assert "entry 5 (quantizer_name '*lm_head*') matched no quantizer" in text
    assert "entry 6" in text
    assert "nn.BatchNorm2d" in text
    assert "written nn.Linear" in text
    assert "entry 1 " not in text
    assert [e.matched for e in report.entries][5:] == [0, 0, 0]


def test_quantizers_no_entry_touches_keep_defaults_and_are_reported():
    model = make_net()
    flat = make_flat([entry("*head.weight_quantizer", FP8)])
    report = apply(model, flat, forward_loop=loop, progress=False)
    assert quantizer(model, "conv.input_quantizer").enabled  # 8-bit default, as in the reference
    assert report["conv.input_quantizer"].decided_by is None
    assert any("matched no entry" in w for w in report.warnings)


def test_missing_forward_loop_warns_and_leaves_activations_dynamic():
    model = make_net()
    report = apply(model, fp8_recipe(), progress=False)
    assert any("no forward_loop" in w for w in report.warnings)
    assert quantizer(model, "head.input_quantizer").amax is None
    assert quantizer(model, "head.weight_quantizer").amax is not None
    model(IDS)  # still runs: amax taken from each tensor


def test_null_algorithm_does_not_calibrate():
    model = make_net()
    report = apply(model, fp8_recipe(algorithm=None), forward_loop=loop, progress=False)
    assert quantizer(model, "head.weight_quantizer").amax is None
    assert any("algorithm is null" in w for w in report.warnings)


# -- calibration ----------------------------------------------------------------------------------


def test_max_calibration_values():
    model = make_net()
    captured = []
    model.head.register_forward_pre_hook(lambda m, a: captured.append(a[0].detach()))
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    expected_input = torch.cat([c.flatten() for c in captured]).abs().max()
    assert torch.allclose(quantizer(model, "head.input_quantizer").amax, expected_input)
    expected_weight = model.head.weight.detach().abs().max()
    assert torch.allclose(quantizer(model, "head.weight_quantizer").amax, expected_weight)


def test_calibration_sees_the_unquantized_model():
    model = make_net()
    captured = []
    model.head.register_forward_pre_hook(lambda m, a: captured.append(a[0].detach().clone()))
    with torch.no_grad():
        model(IDS)
    reference = captured.pop()
    apply(model, fp8_recipe(), forward_loop=lambda m: m(IDS), progress=False)
    assert torch.equal(captured[0], reference)


def test_mse_weight_amax_has_lower_error_than_max():
    def weight_error(model, name):
        q = quantizer(model, f"{name}.weight_quantizer")
        weight = model.get_submodule(name).weight.detach()
        return (q(weight) - weight).square().sum().item()

    recipe = [disable("*"), entry("*weight_quantizer", {"num_bits": 4, "axis": 0})]
    by_max = make_net()
    apply(by_max, make_flat(recipe, algorithm="max"), progress=False)
    by_mse = make_net()
    report = apply(by_mse, make_flat(recipe, algorithm={"method": "mse"}), progress=False)
    assert "mse_search" in report.timings
    for name in ("head", "blocks.0.q_proj", "conv"):
        assert weight_error(by_mse, name) <= weight_error(by_max, name)
    assert weight_error(by_mse, "head") < weight_error(by_max, "head")
    # per-channel amax: one multiplier per channel, never above max * stop_multiplier
    amax = quantizer(by_mse, "head.weight_quantizer").amax
    assert amax.shape == quantizer(by_max, "head.weight_quantizer").amax.shape


# -- remove, context manager, persistence ---------------------------------------------------------


def test_remove_restores_outputs_bit_exactly():
    model = make_net()
    before = snapshot(model)
    with torch.no_grad():
        reference = model(IDS)
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    with torch.no_grad():
        assert not torch.equal(model(IDS), reference)
    assert remove(model) > 0
    assert_same(before, snapshot(model))
    with torch.no_grad():
        assert torch.equal(model(IDS), reference)
    assert remove(model) == 0


def test_quantized_context_manager():
    model = make_net()
    with torch.no_grad():
        reference = model(IDS)
    with quantized(model, fp8_recipe(), forward_loop=loop, progress=False) as report:
        assert isinstance(report, QuantReport)
        with torch.no_grad():
            assert not torch.equal(model(IDS), reference)
    with torch.no_grad():
        assert torch.equal(model(IDS), reference)


def test_torch_save_whole_model_round_trip():
    model = make_net()
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    with torch.no_grad():
        expected = model(IDS)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(loaded(IDS), expected)
    remove(loaded)
    with torch.no_grad():
        assert torch.equal(loaded(IDS), make_net()(IDS))


def test_state_dict_round_trips_amax():
    model = make_net()
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    state = model.state_dict()
    assert "head.weight_quantizer._amax" in state
    assert "head.input_quantizer._amax" in state
    with torch.no_grad():
        expected = model(IDS)
    fresh = make_net()
    apply(fresh, fp8_recipe(algorithm=None), progress=False)  # quantized, not calibrated
    assert fresh.head.input_quantizer.amax is None
    fresh.load_state_dict(state)
    assert torch.equal(fresh.head.input_quantizer.amax, model.head.input_quantizer.amax)
    with torch.no_grad():
        assert torch.equal(fresh(IDS), expected)


def test_weight_cache_follows_weight_updates():
    model = make_net()
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    with torch.no_grad():
        first = model(IDS)
        model.head.weight.mul_(2)
        second = model(IDS)
    assert not torch.equal(first, second)


def test_gradients_flow_straight_through():
    model = make_net().train()
    apply(model, fp8_recipe(), forward_loop=loop, progress=False)
    model(IDS).sum().backward()
    assert model.head.weight.grad is not None
    assert model.head.weight.grad.abs().sum() > 0
    assert isinstance(model.head._parameters["weight"], nn.Parameter)


# -- report ----------------------------------------------------------------------------------------


def test_report_contents_and_json():
    model = make_net()
    report = apply(model, fp8_recipe(disable("*nothing*")), forward_loop=loop, progress=False)
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert data["fingerprint"].startswith("sha256:")
    assert data["algorithm"] == {"method": "max"}
    names = [q["name"] for q in data["quantizers"]]
    assert "head.weight_quantizer" in names
    assert "embed.input_quantizer" not in names
    counts = data["counts"]
    assert counts["enabled"] + counts["disabled"] == counts["total"] == len(names)
    # 2 blocks x 2 linears + conv + head = 6 layers, weight and input each
    assert counts["enabled"] == 12
    head = report["head.weight_quantizer"]
    assert head.enabled
    assert head.amax is not None
    assert head.amax.numel == 1
    assert head.amax.min == head.amax.max == pytest.approx(model.head.weight.abs().max().item())
    assert set(data["timings"]) >= {"load", "plan", "place", "calibrate_weights", "total"}
    assert data["calibration_batches"] == 2
    assert data["entries"][5]["matched"] == 0
    text = str(report)
    _summary, table = text.split("\n\n", 1)
    assert table.splitlines()[0].split()[:3] == ["quantizer", "parent", "format"]
    assert "head.weight_quantizer" in text
    assert "note: 1 exclusion entry (enable: false) matched nothing" in text
    assert "12 enabled" in text
    assert isinstance(model.head.weight_quantizer, TensorQuantizer)


@pytest.mark.slow
def test_triton_backend_under_the_interpreter():
    model = make_net()
    with torch.no_grad():
        reference = model(IDS)
    triton_model = make_net()
    apply(triton_model, fp8_recipe(), forward_loop=loop, backend="triton", progress=False)
    torch_model = make_net()
    apply(torch_model, fp8_recipe(), forward_loop=loop, backend="torch", progress=False)
    with torch.no_grad():
        by_triton = triton_model(IDS)
        by_torch = torch_model(IDS)
    assert triton_model.head.weight_quantizer.backend == "triton"
    assert not torch.equal(by_triton, reference)
    torch.testing.assert_close(by_triton, by_torch)


def test_import_qrecipe_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, qrecipe; qrecipe.resolve; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_dynamic_nvfp4_calibrates_its_per_tensor_amax_once():
    from qrecipe.runtime.flatbuild import NVFP4

    seen = []
    model = make_net()
    handle = model.blocks[0].mlp.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    recipe = make_flat([disable("*"), entry("*blocks.0.mlp.input_quantizer", NVFP4)])
    apply(model, recipe, forward_loop=loop, backend="torch")
    handle.remove()
    quantizer = model.blocks[0].mlp.input_quantizer
    expected = torch.stack([x.detach().abs().amax() for x in seen]).max()
    assert quantizer.amax is not None
    assert quantizer.amax.dim() == 0
    assert torch.equal(quantizer.amax, expected.float())

    uncalibrated = make_net()
    apply(
        uncalibrated,
        make_flat([disable("*"), entry("*blocks.0.mlp.input_quantizer", NVFP4)], algorithm=None),
    )
    assert uncalibrated.blocks[0].mlp.input_quantizer.amax is None


def test_summary_counts_unmatched_exclusions_but_lists_other_warnings():
    flat = fp8_recipe(
        disable("*lm_head*"),
        disable("*router*"),
        entry("*no_such_layer*", FP8),
        disable("*", parent_class="Linear"),
    )
    report = apply(make_net(), flat, forward_loop=loop, progress=False)
    summary = report.summary()
    assert "note: 2 exclusion entries (enable: false) matched nothing" in summary
    assert "'*no_such_layer*') matched no quantizer" in summary
    assert "written nn.Linear" in summary
    assert "'*router*'" not in summary
    assert sum("matched no quantizer" in w for w in report.warnings) == 4


def test_progress_bars_only_for_enough_quantizers_to_watch(capsys):
    apply(make_net(), fp8_recipe(), forward_loop=loop, progress=True)
    assert "calibrating weights" not in capsys.readouterr().err  # a handful of quantizers
    torch.manual_seed(0)
    many = nn.Sequential(*(nn.Linear(4, 4) for _ in range(70)))
    flat = make_flat([disable("*"), entry("*weight_quantizer", FP8)])
    apply(many, flat, progress=True)
    assert "calibrating weights" in capsys.readouterr().err
