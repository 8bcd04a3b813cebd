"""Models dispatched by accelerate with weights offloaded to the CPU and disk.

The offloaded layers hold their weights on the ``meta`` device outside forward calls. Applying a
recipe to such a model must give exactly the quantizers and outputs of the same model in memory,
whole-model and layer by layer, and for algorithms that change weights too.
"""

from __future__ import annotations

import copy
import gc
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
accelerate = pytest.importorskip("accelerate")

import qrecipe  # noqa: E402
from qrecipe.runtime import apply, iter_quantizers, remove  # noqa: E402
from qrecipe.runtime.quantizer import iter_stages  # noqa: E402
from tiny_models import batches, loop_over, tiny_llama  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(autouse=True)
def _release_quantized_models():
    # Quantized attention modules keep the shared attention functions wrapped while they live;
    # collect this test's models so that later tests find the functions as transformers has them.
    yield
    gc.collect()


DATA = batches()
LOOP = loop_over(DATA)
DEVICE_MAP = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "cpu",
}


def with_algorithm(name: str, algorithm: dict[str, Any] | None) -> dict[str, Any]:
    flat = copy.deepcopy(qrecipe.resolve(name))
    if algorithm is not None:
        flat["quantize"]["algorithm"] = algorithm
        flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


def offloaded(tmp_path: Path) -> torch.nn.Module:
    model = accelerate.dispatch_model(
        tiny_llama(layers=3), device_map=DEVICE_MAP, offload_dir=str(tmp_path)
    )
    assert model.model.layers[2].mlp.up_proj.weight.device.type == "meta"
    return model


@pytest.mark.parametrize(
    ("recipe", "algorithm"),
    [
        ("general/ptq/fp8_default-kv_fp8", None),
        ("general/ptq/fp8_default-kv_fp8", {"method": "max", "layerwise": {"enable": True}}),
        (
            "general/ptq/fp8_default-kv_fp8",
            {
                "method": "max",
                "layerwise": {"enable": True, "calib_mutates_weights": False},
            },
        ),
        ("general/ptq/w4a16_int4_awq", {"method": "awq_lite", "alpha_step": 0.5}),
        ("general/ptq/w4a16_int4_awq", {"method": "gptq", "layerwise": {"enable": True}}),
    ],
    ids=["max", "max-layerwise", "max-layerwise-offload", "awq_lite", "gptq-layerwise"],
)
def test_offloaded_model_calibrates_as_in_memory(tmp_path, recipe, algorithm):
    flat = with_algorithm(recipe, algorithm)
    in_memory = tiny_llama(layers=3)
    apply(in_memory, flat, forward_loop=LOOP, progress=False)
    model = offloaded(tmp_path)
    apply(model, flat, forward_loop=LOOP, progress=False)
    for (name, mine), (_, theirs) in zip(
        iter_quantizers(model), iter_quantizers(in_memory), strict=True
    ):
        for a, b in zip(iter_stages(mine), iter_stages(theirs), strict=True):
            assert (a.amax is None) == (b.amax is None), name
            if b.amax is not None:
                assert a.amax is not None, name
                assert a.amax.device.type != "meta", name
                assert torch.equal(a.amax, b.amax), name
    with torch.no_grad():
        assert torch.equal(model(DATA[0]).logits, in_memory(DATA[0]).logits)
    assert model.model.layers[2].mlp.up_proj.weight.device.type == "meta"


def test_offloaded_model_without_quantizers_after_remove(tmp_path):
    reference = tiny_llama(layers=3)
    with torch.no_grad():
        expected = reference(DATA[0]).logits
    model = offloaded(tmp_path)
    apply(model, qrecipe.resolve("general/ptq/fp8_default-kv_fp8"), forward_loop=LOOP)
    remove(model)
    with torch.no_grad():
        assert torch.equal(model(DATA[0]).logits, expected)


@pytest.mark.parametrize(
    ("recipe", "algorithm"),
    [
        ("general/ptq/w4a16_int4_awq", {"method": "awq_lite", "alpha_step": 0.5}),
        ("general/ptq/int8_smoothquant-kv_fp8", None),
        ("general/ptq/w4a16_int4_awq", {"method": "gptq", "layerwise": {"enable": True}}),
    ],
    ids=["awq_lite", "smoothquant", "gptq-layerwise"],
)
def test_remove_restores_offloaded_weights_changed_by_calibration(tmp_path, recipe, algorithm):
    reference = tiny_llama(layers=3)
    expected = {k: v.clone() for k, v in reference.state_dict().items()}
    with torch.no_grad():
        expected_logits = reference(DATA[0]).logits
    model = offloaded(tmp_path)
    apply(model, with_algorithm(recipe, algorithm), forward_loop=LOOP, progress=False)
    with torch.no_grad():
        changed = model(DATA[0]).logits
    remove(model)
    # What accelerate loads at each call, from memory (layer 1) and disk (layer 2), is the
    # original again, and no changed copy is left in memory.
    weights_map = model.model.layers[2].mlp.down_proj._hf_hook.weights_map
    for key, value in expected.items():
        if key.startswith(("model.layers.1.", "model.layers.2.")):
            assert torch.equal(weights_map.dataset[key], value), key
    assert not [k for k in weights_map.dataset.state_dict if k.startswith("model.layers.2.")]
    with torch.no_grad():
        assert torch.equal(model(DATA[0]).logits, expected_logits)
    assert not torch.equal(changed, expected_logits)
    assert model.model.layers[2].mlp.up_proj.weight.device.type == "meta"
