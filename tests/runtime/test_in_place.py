"""In-place fake quantization: ``fake_quant_`` and the later stages of a quantizer sequence.

In place means the same bits written into the tensor itself; it is used only on tensors the
runtime made (never on a layer's input, which other layers and residual connections read).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from qrecipe.runtime import SequentialQuantizer, TensorQuantizer  # noqa: E402
from qrecipe.runtime.attributes import default_attributes  # noqa: E402
from qrecipe.runtime.kernels import fake_quant, fake_quant_, reduce_amax  # noqa: E402
from qrecipe.runtime.kernels.catalog import FORMATS, format_named  # noqa: E402

pytestmark = pytest.mark.runtime

_BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(_BITS[t.dtype])


def values(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * 4.0
    x.view(-1)[3] = float("nan")
    x.view(-1)[7] = float("-inf")
    x.view(-1)[11] = -0.0
    return x.to(dtype)


@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_fake_quant_in_place_gives_the_same_bits(dtype: torch.dtype, backend: str) -> None:
    for name in FORMATS:
        fmt = format_named(name)
        for x in (values((8, 96), dtype), values((96, 8), dtype).t(), values((5, 70), dtype)):
            amax = reduce_amax(x, fmt) if fmt.needs_calibration else None
            expected = fake_quant(x, fmt, amax, backend="reference")
            target = x.clone()
            result = fake_quant_(target, fmt, amax, backend=backend)
            assert result is target, name
            assert torch.equal(bits(target), bits(expected)), f"{name} {tuple(x.stride())}"


def test_float32_is_quantized_without_another_full_size_tensor() -> None:
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))  # finite values
    for name in ("fp8", "int8_per_channel", "int4_per_block", "nvfp4", "mxfp4"):
        fmt = format_named(name)
        target = x.clone()
        pointer = target.data_ptr()
        expected = fake_quant(target, fmt, backend="reference")
        assert fake_quant_(target, fmt).data_ptr() == pointer
        assert torch.equal(bits(target), bits(expected)), name


def sequence(first: dict, second: dict) -> SequentialQuantizer:
    return SequentialQuantizer(
        [
            TensorQuantizer(default_attributes(**first)),
            TensorQuantizer(default_attributes(**second)),
        ]
    )


INT4_BLOCKS = {"num_bits": 4, "block_sizes": {"-1": 16, "type": "static"}}
FP8 = {"num_bits": [4, 3]}


def test_later_stages_quantize_the_earlier_result_in_place() -> None:
    quantizer = sequence(INT4_BLOCKS, FP8)
    first, second = quantizer.stages
    x = values((16, 64), torch.float32)
    before = x.clone()
    seen: list[int] = []
    second.register_forward_pre_hook(lambda module, args: seen.append(args[0].data_ptr()))
    with torch.no_grad():
        y = quantizer(x)
    assert torch.equal(bits(x), bits(before)), "the caller's tensor must not change"
    assert y.data_ptr() == seen[0], "the second stage wrote into the first stage's result"
    expected = second(first(before))
    assert torch.equal(bits(y), bits(expected))


def test_a_disabled_first_stage_leaves_the_input_alone() -> None:
    quantizer = sequence({**INT4_BLOCKS, "enable": False}, FP8)
    x = values((16, 64), torch.float32)
    before = x.clone()
    with torch.no_grad():
        y = quantizer(x)
    assert torch.equal(bits(x), bits(before))
    assert y.data_ptr() != x.data_ptr()


def test_with_autograd_nothing_is_in_place_and_gradients_flow() -> None:
    quantizer = sequence(INT4_BLOCKS, FP8)
    x = (torch.randn(16, 64, generator=torch.Generator().manual_seed(0)) * 4).requires_grad_()
    before = x.detach().clone()
    y = quantizer(x)
    y.sum().backward()
    assert torch.equal(x.detach(), before)
    assert x.grad is not None
    assert torch.equal(x.grad, torch.ones_like(x))
    with torch.no_grad():
        # Equal values (the straight-through estimator computes x + (y - x), which may turn
        # a negative zero into a positive one).
        assert torch.equal(y.detach(), quantizer(x.detach()))
