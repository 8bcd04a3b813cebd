"""remove() takes out exactly what apply() put in, through the hook handles it kept."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from qrecipe.runtime import apply, remove  # noqa: E402
from qrecipe.runtime.flatbuild import FP8, disable, entry, make_flat  # noqa: E402
from qrecipe.runtime.placement import Wiring  # noqa: E402

pytestmark = pytest.mark.runtime

RECIPE = make_flat([disable("*"), entry("*weight_quantizer", FP8), entry("*input_quantizer", FP8)])
X = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))


def make_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8)).eval()


def hook_count(module: nn.Module) -> int:
    return len(module._forward_pre_hooks) + len(module._forward_hooks)


def test_hooks_registered_by_others_survive_removal():
    model = make_model()
    apply(model, RECIPE, forward_loop=lambda m: m(X), progress=False)
    calls = []
    model[0].register_forward_pre_hook(lambda m, args: calls.append("pre"))
    model[0].register_forward_hook(lambda m, args, out: calls.append("post"))
    assert hook_count(model[0]) == 4
    remove(model)
    assert hook_count(model[0]) == 2
    assert not model[0]._forward_pre_hooks_with_kwargs
    assert not model[0]._forward_hooks_with_kwargs
    assert not model[0]._forward_hooks_always_called
    with torch.no_grad():
        assert torch.equal(model(X), make_model()(X))
    assert calls == ["pre", "post"]


def test_each_quantized_module_keeps_the_handles_of_its_hooks():
    model = make_model()
    apply(model, RECIPE, forward_loop=lambda m: m(X), progress=False)
    wiring = Wiring.of(model[0])
    assert wiring is not None
    assert [h.id for h in wiring.handles] == [
        *model[0]._forward_pre_hooks,
        *model[0]._forward_hooks,
    ]
    assert wiring.added == ["input_quantizer", "output_quantizer", "weight_quantizer"]
    assert Wiring.of(model[1]) is None  # ReLU gets no quantizers


def test_a_deep_copy_is_removed_on_its_own():
    model = make_model()
    apply(model, RECIPE, forward_loop=lambda m: m(X), progress=False)
    with torch.no_grad():
        quantized = model(X)
    duplicate = copy.deepcopy(model)
    assert remove(duplicate) == 2
    with torch.no_grad():
        assert torch.equal(duplicate(X), make_model()(X))
        assert torch.equal(model(X), quantized)  # the original keeps its quantizers
    assert remove(model) == 2
