"""Every calibration algorithm against ModelOpt 0.47's ``mtq.quantize`` on the CPU, bit for bit.

Same tiny Llama (fixed seed), same batches, same flat recipe: every amax, ``pre_quant_scale``,
weight (AWQ, SmoothQuant and GPTQ change them) and the logits must be equal. Where ModelOpt's
CPU path stops short, the comparison stops there too, and says why:

* dynamic NVFP4 fake quantization needs CUDA in ModelOpt, so ``nvfp4_act_headroom`` compares
  the calibrated amax only (no logits);
* ModelOpt registers no amax for ``use_constant_amax`` quantizers (qrecipe holds 448), so those
  are skipped;
* ModelOpt's GPTQ asks the GPU how full it is; that probe is answered with 0 here;
* layer by layer, ModelOpt replays a calibrated layer with the key-value cache its last
  calibration pass filled, and qrecipe with an empty one (the layer then sees only the current
  keys): the layer-by-layer GPTQ case runs without a cache, where both agree.
"""

from __future__ import annotations

import copy
import gc
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    mtq = pytest.importorskip("modelopt.torch.quantization")
    from modelopt.torch.quantization.nn import SequentialQuantizer as ModelOptSequential
    from modelopt.torch.quantization.utils import calib_utils

import qrecipe  # noqa: E402
from qrecipe.runtime import apply, iter_quantizers  # noqa: E402
from qrecipe.runtime.quantizer import iter_stages  # noqa: E402
from tiny_models import batches, loop_over, tiny_llama  # noqa: E402

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(autouse=True)
def _release_quantized_models():
    # Quantized attention modules keep the shared attention functions wrapped while they live;
    # collect this test's models so that later tests find the functions as transformers has them.
    yield
    gc.collect()


DATA = batches()


def with_algorithm(name: str, algorithm: dict[str, Any] | None) -> dict[str, Any]:
    flat = copy.deepcopy(qrecipe.resolve(name))
    if algorithm is not None:
        flat["quantize"]["algorithm"] = algorithm
        flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


def int_block_keys(value: Any) -> Any:
    """The flat quantize section as ModelOpt takes it: block-size axis keys back to ints."""
    if isinstance(value, list):
        return [int_block_keys(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "block_sizes" and isinstance(item, dict):
                item = {(int(k) if k.lstrip("-").isdigit() else k): v for k, v in item.items()}
            out[key] = int_block_keys(item)
        return out
    return value


def modelopt_quantize(model: Any, flat: dict[str, Any], forward_loop: Any) -> None:
    quantize = int_block_keys(flat["quantize"])
    config = {"quant_cfg": quantize["quant_cfg"], "algorithm": quantize["algorithm"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mtq.quantize(model, config, forward_loop=forward_loop)


def compare(ours: Any, theirs: Any, *, logits: bool = True, use_cache: bool = True) -> int:
    """Assert equal amax, pre_quant_scale, parameters and logits; returns the amax count."""
    modules = dict(theirs.named_modules())
    compared = 0
    for name, quantizer in iter_quantizers(ours):
        reference = modules[name]
        stages = iter_stages(quantizer)
        references = list(reference) if isinstance(reference, ModelOptSequential) else [reference]
        assert len(stages) == len(references), name
        for index, (stage, other) in enumerate(zip(stages, references, strict=True)):
            if not stage.enabled or stage.attributes["use_constant_amax"]:
                continue
            expected = getattr(other, "_amax", None)
            assert (stage.amax is None) == (expected is None), f"{name}[{index}] amax presence"
            if expected is not None:
                assert stage.amax is not None
                mine = stage.amax.float().flatten()
                assert torch.equal(mine, expected.float().flatten()), f"{name}[{index}] amax"
                compared += 1
        expected_scale = getattr(reference, "_pre_quant_scale", None)
        if isinstance(reference, ModelOptSequential):
            expected_scale = None
        mine_scale = stages[0].pre_quant_scale
        assert (mine_scale is None) == (expected_scale is None), f"{name} pre_quant_scale"
        if mine_scale is not None:
            assert torch.equal(mine_scale.flatten(), expected_scale.flatten()), name
    for (name, mine), (_, other) in zip(
        ours.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert torch.equal(mine, other), f"parameter {name}"
    if logits:
        with torch.no_grad():
            for ids in DATA:
                mine_out = ours(ids, use_cache=use_cache).logits
                their_out = theirs(ids, use_cache=use_cache).logits
                assert torch.equal(mine_out, their_out)
    return compared


def run_both(
    name: str,
    algorithm: dict[str, Any] | None,
    dtype: Any = None,
    *,
    logits: bool = True,
    use_cache: bool = True,
) -> Any:
    dtype = dtype or torch.float32
    flat = with_algorithm(name, algorithm)
    loop = loop_over(DATA, use_cache=use_cache)
    theirs = tiny_llama(dtype=dtype)
    modelopt_quantize(theirs, flat, loop)
    ours = tiny_llama(dtype=dtype)
    report = apply(ours, flat, forward_loop=loop, progress=False)
    assert compare(ours, theirs, logits=logits, use_cache=use_cache) > 0
    return report


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_smoothquant(dtype: str) -> None:
    report = run_both("general/ptq/int8_smoothquant-kv_fp8", None, getattr(torch, dtype))
    record = report["model.layers.0.self_attn.q_proj.input_quantizer"]
    assert record.algorithm is not None
    assert record.algorithm["smoothquant_alpha"] == 1.0


def test_smoothquant_alpha() -> None:
    run_both("general/ptq/int8_smoothquant-kv_fp8", {"method": "smoothquant", "alpha": 0.5})


@pytest.mark.parametrize(
    ("recipe", "algorithm"),
    [
        ("general/ptq/w4a16_int4_awq", None),
        ("general/ptq/w4a8_int4_awq-kv_fp8", None),
        ("general/ptq/w4a16_int4_awq", {"method": "awq_clip", "max_tokens_per_batch": 8}),
        (
            "general/ptq/w4a8_int4_awq-kv_fp8",
            {"method": "awq_full", "alpha_step": 0.25, "max_tokens_per_batch": 8},
        ),
    ],
    ids=["lite-w4a16", "lite-w4a8-sequence", "clip", "full-w4a8"],
)
def test_awq(recipe: str, algorithm: dict[str, Any] | None) -> None:
    report = run_both(recipe, algorithm)
    details = [q.algorithm for q in report.quantizers if q.algorithm]
    assert details


def test_awq_bfloat16() -> None:
    run_both("general/ptq/w4a8_int4_awq-kv_fp8", {"method": "awq_lite"}, torch.bfloat16)


@pytest.fixture
def modelopt_gptq_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # ModelOpt's GPTQ asks how full the GPU is before placing its Hessians.
    monkeypatch.setattr(calib_utils, "get_used_gpu_mem_fraction", lambda device: 0.0)


@pytest.mark.usefixtures("modelopt_gptq_on_cpu")
@pytest.mark.parametrize(
    ("recipe", "algorithm"),
    [
        ("general/ptq/w4a16_int4_awq", {"method": "gptq", "block_size": 16}),
        ("general/ptq/int8_per_channel-kv_fp8", {"method": "gptq", "perc_damp": 0.1}),
    ],
    ids=["int4-blocks", "int8-channels"],
)
def test_gptq(recipe: str, algorithm: dict[str, Any]) -> None:
    report = run_both(recipe, algorithm)
    record = report["model.layers.1.mlp.down_proj.weight_quantizer"]
    assert record.algorithm is not None
    assert 0 < record.algorithm["gptq_relative_error"] < 1


@pytest.mark.usefixtures("modelopt_gptq_on_cpu")
def test_gptq_layer_by_layer_without_cache() -> None:
    algorithm = {"method": "gptq", "block_size": 16, "layerwise": {"enable": True}}
    run_both("general/ptq/w4a8_int4_awq-kv_fp8", algorithm, use_cache=False)


@pytest.mark.parametrize(
    ("recipe", "dtype"),
    [
        ("general/ptq/w4a16_int4_awq", "float32"),
        ("general/ptq/int8_per_channel-kv_fp8", "float32"),
        ("general/ptq/fp8_default-kv_fp8", "bfloat16"),
    ],
)
def test_mse_multipliers(recipe: str, dtype: str) -> None:
    run_both(recipe, {"method": "mse", "step_size": 0.25}, getattr(torch, dtype))


@pytest.mark.parametrize(
    "algorithm",
    [
        None,
        {"method": "nvfp4_act_headroom", "anchor_percentile": 5, "upper_percentile": 100},
        {"method": "nvfp4_act_headroom", "rho": 4},
    ],
    ids=["defaults", "percentiles", "no-headroom"],
)
def test_nvfp4_act_headroom(algorithm: dict[str, Any] | None) -> None:
    report = run_both("general/ptq/nvfp4_act_headroom-kv_fp8_cast", algorithm, logits=False)
    assert report["model.layers.0.mlp.down_proj.input_quantizer"].algorithm is not None


def test_max_layer_by_layer() -> None:
    algorithm = {"method": "max", "layerwise": {"enable": True}}
    run_both("general/ptq/fp8_default-kv_fp8", algorithm)
