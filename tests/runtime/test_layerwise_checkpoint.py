"""Layer-by-layer checkpoints: an interrupted run resumes and ends as an uninterrupted one.

A run is interrupted by a ``forward_loop`` that raises on one of its calls (each layer calls it
at least once to capture the next layer's inputs); the rerun with the same recipe, model and
``checkpoint_dir`` must give the quantizers (amax, pre_quant_scale, global_amax, attributes)
and the weights of a straight run bit for bit. Checkpoints of another recipe, model or
calibration data are refused with a clear message, before the model is changed.
"""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import qrecipe  # noqa: E402
from qrecipe.runtime import CheckpointMismatchError, apply, iter_quantizers, remove  # noqa: E402
from qrecipe.runtime.quantizer import iter_stages  # noqa: E402
from tiny_models import batches, loop_over, tiny_llama  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.filterwarnings("ignore::UserWarning")]

DATA = batches()
LOOP = loop_over(DATA)
LAYERS = 5


@pytest.fixture(autouse=True)
def _release_quantized_models():
    yield
    gc.collect()


def with_algorithm(name: str, algorithm: dict[str, Any]) -> dict[str, Any]:
    flat = copy.deepcopy(qrecipe.resolve(name))
    flat["quantize"]["algorithm"] = algorithm
    flat["fingerprint"] = qrecipe.fingerprint(flat)
    return flat


def layerwise(method: str, directory: Path | None, save_every: int = 1, **options: Any) -> Any:
    return {
        "method": method,
        **options,
        "layerwise": {
            "enable": True,
            "checkpoint_dir": None if directory is None else str(directory),
            "save_every": save_every,
        },
    }


class Interrupted(Exception):
    pass


def interrupting(after_calls: int) -> Any:
    calls = 0

    def forward_loop(model: torch.nn.Module) -> None:
        nonlocal calls
        calls += 1
        if calls > after_calls:
            raise Interrupted
        LOOP(model)

    return forward_loop


def snapshot(model: torch.nn.Module) -> dict[str, Any]:
    """Every quantizer's state and every weight, as tensors and plain values."""
    values: dict[str, Any] = {k: v.clone() for k, v in model.state_dict().items()}
    for name, quantizer in iter_quantizers(model):
        for number, stage in enumerate(iter_stages(quantizer)):
            values[f"{name}[{number}].attributes"] = copy.deepcopy(stage.attributes)
    return values


def assert_same(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(mine[key], value), key
            assert mine[key].dtype == value.dtype, key
        else:
            assert mine[key] == value, key


CASES = [
    # GPTQ: each layer's inputs are the quantized outputs of the one before, weights change.
    ("general/ptq/w4a16_int4_awq", "gptq", {"block_size": 16}, 1),
    ("general/ptq/w4a16_int4_awq", "gptq", {"block_size": 16}, 2),
    # AWQ: full-precision inputs, weights change; SmoothQuant also changes attributes.
    ("general/ptq/w4a16_int4_awq", "awq_lite", {"alpha_step": 0.5}, 2),
    ("general/ptq/int8_smoothquant-kv_fp8", "smoothquant", {}, 1),
    ("general/ptq/fp8_default-kv_fp8", "max", {}, 1),
]


@pytest.mark.parametrize(
    ("recipe", "method", "options", "save_every"),
    CASES,
    ids=[f"{c[1]}-every-{c[3]}" for c in CASES],
)
def test_an_interrupted_run_resumes_to_the_quantizers_of_a_straight_run(
    tmp_path, recipe, method, options, save_every
):
    straight = tiny_llama(layers=LAYERS)
    apply(straight, with_algorithm(recipe, layerwise(method, None, **options)), forward_loop=LOOP,
          progress=False)  # fmt: skip
    expected = snapshot(straight)

    flat = with_algorithm(recipe, layerwise(method, tmp_path, save_every, **options))
    model = tiny_llama(layers=LAYERS)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    # forward_loop runs once to capture layer 0's inputs, then once per layer for the next
    # layer's: the fifth call fails with three layers committed (two when saving every two).
    with pytest.raises(Interrupted):
        apply(model, flat, forward_loop=interrupting(4), progress=False)
    assert not list(iter_quantizers(model))  # the failed run left the model as it was
    assert_same(dict(model.state_dict()), original)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["completed"] == (3 if save_every == 1 else 2)
    assert (tmp_path / "layer-00002.pt").is_file()

    report = apply(model, flat, forward_loop=LOOP, progress=False)
    assert any("resumed" in w and "0-" in w for w in report.warnings)
    assert_same(snapshot(model), expected)
    assert json.loads((tmp_path / "manifest.json").read_text())["completed"] == LAYERS
    # Removal still gives back the weights the model had before the first run.
    remove(model)
    assert_same(dict(model.state_dict()), original)


def test_a_complete_checkpoint_restores_every_layer(tmp_path):
    flat = with_algorithm("general/ptq/w4a16_int4_awq", layerwise("gptq", tmp_path, block_size=16))
    first = tiny_llama(layers=LAYERS)
    apply(first, flat, forward_loop=LOOP, progress=False)
    calls = 0

    def counting(model: torch.nn.Module) -> None:
        nonlocal calls
        calls += 1
        LOOP(model)

    second = tiny_llama(layers=LAYERS)
    report = apply(second, flat, forward_loop=counting, progress=False)
    assert calls == 1  # the check of the last layer's inputs; nothing is calibrated again
    assert any("resumed" in w for w in report.warnings)
    assert_same(snapshot(second), snapshot(first))


def interrupted_checkpoint(directory: Path, recipe: str = "general/ptq/w4a16_int4_awq") -> None:
    flat = with_algorithm(recipe, layerwise("gptq", directory, block_size=16))
    with pytest.raises(Interrupted):
        apply(tiny_llama(layers=LAYERS), flat, forward_loop=interrupting(2), progress=False)


def refused_without_change(model: torch.nn.Module, flat: dict[str, Any], match: str) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=match):
        apply(model, flat, forward_loop=LOOP, progress=False)
    assert not list(iter_quantizers(model))
    assert_same(dict(model.state_dict()), before)


def test_a_checkpoint_of_another_recipe_is_refused(tmp_path):
    interrupted_checkpoint(tmp_path)
    other = with_algorithm("general/ptq/w4a16_int4_awq", layerwise("gptq", tmp_path, block_size=8))
    refused_without_change(tiny_llama(layers=LAYERS), other, "another recipe fingerprint")


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    interrupted_checkpoint(tmp_path)
    flat = with_algorithm("general/ptq/w4a16_int4_awq", layerwise("gptq", tmp_path, block_size=16))
    refused_without_change(tiny_llama(layers=LAYERS + 1), flat, "another model")


def test_a_checkpoint_of_other_weights_or_data_is_refused(tmp_path):
    interrupted_checkpoint(tmp_path)
    flat = with_algorithm("general/ptq/w4a16_int4_awq", layerwise("gptq", tmp_path, block_size=16))
    model = tiny_llama(layers=LAYERS)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(2)
    refused_without_change(model, flat, "inputs of decoder layer 1 differ")
    other_data = batches(seed=7)
    model = tiny_llama(layers=LAYERS)
    with pytest.raises(CheckpointMismatchError, match="calibration data"):
        apply(model, flat, forward_loop=loop_over(other_data), progress=False)
    assert not list(iter_quantizers(model))


def test_an_unreadable_checkpoint_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    flat = with_algorithm("general/ptq/fp8_default-kv_fp8", layerwise("max", tmp_path))
    refused_without_change(tiny_llama(layers=LAYERS), flat, "manifest.json: not a readable")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something else"}))
    refused_without_change(tiny_llama(layers=LAYERS), flat, "not a layer-by-layer calibration")
