"""Fake-quantized weights kept between forward passes, and ``cache_weights=False``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from qrecipe.runtime import apply, iter_quantizers, quantized  # noqa: E402
from qrecipe.runtime.flatbuild import FP8, INT8_PER_CHANNEL, disable, entry, make_flat  # noqa: E402

pytestmark = pytest.mark.runtime

RECIPE = make_flat(
    [
        disable("*"),
        entry("*0.weight_quantizer", INT8_PER_CHANNEL),
        entry("*2.weight_quantizer", [INT8_PER_CHANNEL, FP8]),  # a two-stage sequence
        entry("*input_quantizer", FP8),
    ]
)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16)).eval()


BATCH = torch.randn(8, 32, generator=torch.Generator().manual_seed(1))


def calibrate(model: nn.Module) -> None:
    model(BATCH)


def weight_quantizer_calls(model: nn.Module) -> list[int]:
    """Counts, per weight quantizer, how often it runs (hooks on every stage)."""
    calls = [0]

    def count(module: nn.Module, args: tuple) -> None:
        calls[0] += 1

    for name, quantizer in iter_quantizers(model):
        if name.endswith("weight_quantizer"):
            quantizer.register_forward_pre_hook(count)
    return calls


@pytest.mark.parametrize("cache_weights", [True, False])
def test_outputs_are_the_same_with_and_without_the_cache(cache_weights: bool) -> None:
    reference = make_model()
    apply(reference, RECIPE, forward_loop=calibrate, progress=False, backend="reference")
    model = make_model()
    apply(model, RECIPE, forward_loop=calibrate, progress=False, cache_weights=cache_weights)
    assert all(q.cache_weights is cache_weights for _, q in iter_quantizers(model))
    calls = weight_quantizer_calls(model)
    with torch.no_grad():
        outputs = [model(BATCH) for _ in range(3)]
        expected = reference(BATCH)
    for output in outputs:
        assert torch.equal(output, expected)
    # Two weight quantizers: quantized once and kept, or quantized on every pass.
    assert calls[0] == (2 if cache_weights else 6)


def test_the_cache_is_off_by_default() -> None:
    model = make_model()
    apply(model, RECIPE, forward_loop=calibrate, progress=False)
    assert not any(q.cache_weights for _, q in iter_quantizers(model))
    calls = weight_quantizer_calls(model)
    with torch.no_grad():
        model(BATCH)
        model(BATCH)
    assert calls[0] == 2 + 2


def test_quantized_context_passes_the_choice_on() -> None:
    model = make_model()
    with quantized(model, RECIPE, forward_loop=calibrate, progress=False, cache_weights=True):
        assert all(q.cache_weights for _, q in iter_quantizers(model))
    assert not list(iter_quantizers(model))


def test_switching_the_cache_off_later_takes_effect() -> None:
    model = make_model()
    apply(model, RECIPE, forward_loop=calibrate, progress=False, cache_weights=True)
    calls = weight_quantizer_calls(model)
    with torch.no_grad():
        model(BATCH)
        for _, quantizer in iter_quantizers(model):
            quantizer.cache_weights = False
        model(BATCH)
        model(BATCH)
    assert calls[0] == 2 + 2 + 2
