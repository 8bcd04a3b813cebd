"""Triton kernels against the PyTorch reference: identical bits for every format and dtype.

The kernels run in Triton's CPU interpreter (tests/conftest.py sets TRITON_INTERPRET=1 before
anything imports triton), with the same integer-only rounding they use on the GPU.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from qrecipe.runtime.kernels import (  # noqa: E402
    QuantFormat,
    UnsupportedFormatError,
    fake_quant,
    reduce_amax,
)
from qrecipe.runtime.kernels.catalog import FORMATS, format_named  # noqa: E402

pytestmark = [
    pytest.mark.runtime,
    # The interpreter evaluates float32 arithmetic with numpy, which warns where IEEE
    # arithmetic overflows to infinity as intended (huge inputs times a scale).
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}

# Shapes: ragged last blocks (300 = 9 x 32 + 12 = 18 x 16 + 12), odd channel counts, and a 3-D
# tensor whose 2-D blocks straddle the outer axis. Small shapes have their own test.
SHAPES = [(67, 300), (3, 37, 45)]
SMALL_SHAPES = [(45,), (1, 1), (1,)]
TWO_D_BLOCKS = {"fp8_2d_block", "fp8_e4m3_block_2d", "fp8_e5m2_block_2d", "int8_rows_block"}


def bits(t: torch.Tensor) -> torch.Tensor:
    """Raw bit patterns: -0.0 differs from 0.0 and NaN payloads count."""
    return t.contiguous().view(_BITS[t.dtype])


def assert_same_bits(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.dtype == expected.dtype, what
    assert actual.shape == expected.shape, what
    differ = bits(actual) != bits(expected)
    if differ.any():
        where = differ.nonzero()[:5].tolist()
        samples = [(actual[tuple(i)].item(), expected[tuple(i)].item()) for i in where]
        raise AssertionError(
            f"{what}: {int(differ.sum())} of {differ.numel()} elements differ, e.g. at {where}: "
            f"(triton, reference) = {samples}"
        )


def subnormal(dtype: torch.dtype) -> float:
    return {torch.float32: 3e-40, torch.float16: 3e-6, torch.bfloat16: 3e-39}[dtype]


def edge_tensor(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Random values over twelve binades with every special case planted."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=generator) * torch.exp2(
        torch.randint(-6, 6, shape, generator=generator).float()
    )
    flat = values.view(-1)
    specials = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, subnormal(dtype)]
    specials += [-subnormal(dtype), 1e-30, 3.0e4, -3.0e4]
    for i, value in enumerate(specials):
        if flat.numel() > 4 * i + 3:
            flat[4 * i + 3] = value
    if len(shape) >= 2 and shape[-2] > 3:
        values[..., 2, :] = 0.0  # a zero channel, zero blocks
    if shape[-1] > 40:
        values[..., 32:40] = 0.0  # zero blocks inside rows
    return values.to(dtype)


def tie_tensor(dtype: torch.dtype) -> torch.Tensor:
    """Values half-way between neighbours of the integer and float grids, and extremes."""
    halves = torch.arange(-64, 65, dtype=torch.float32) + 0.5
    grid_ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 1.0625, 1.1875, 448.0, 464.0])
    values = torch.cat([halves, grid_ties, -grid_ties, torch.tensor([6.0, 7.5, 28.0, 127.0])])
    return values.to(dtype)


def both(x: torch.Tensor, fmt: QuantFormat, amax: torch.Tensor | None):
    return (
        fake_quant(x, fmt, amax, backend="triton"),
        fake_quant(x, fmt, amax, backend="reference"),
    )


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("name", list(FORMATS))
def test_triton_matches_reference_bit_for_bit(name: str, dtype_name: str) -> None:
    fmt = format_named(name)
    dtype = DTYPES[dtype_name]
    for shape in SHAPES:
        x = edge_tensor(shape, dtype)
        amax_triton = reduce_amax(x, fmt, backend="triton")
        amax_torch = reduce_amax(x, fmt, backend="torch")
        assert amax_triton.dtype == torch.float32
        assert tuple(amax_torch.shape) == fmt.amax_shape(shape)
        assert_same_bits(amax_triton, amax_torch, f"{name} amax {shape}")
        # The calibrated amax, and (for calibrated formats) one too small for most elements,
        # which drives them into saturation.
        amaxes = [amax_torch, amax_torch * 0.25] if fmt.needs_calibration else [None]
        for amax in amaxes:
            actual, expected = both(x, fmt, amax)
            assert_same_bits(actual, expected, f"{name} {dtype_name} {shape}")
        assert torch.isnan(actual).equal(torch.isnan(x))
        assert torch.equal(actual[torch.isinf(x)], x[torch.isinf(x)])


@pytest.mark.parametrize("name", list(FORMATS))
def test_small_tensors_match(name: str) -> None:
    fmt = format_named(name)
    for shape in SMALL_SHAPES:
        x = edge_tensor(shape, torch.bfloat16, seed=3)
        if len(shape) == 1 and name in TWO_D_BLOCKS:
            for backend in ("triton", "torch"):
                with pytest.raises(UnsupportedFormatError, match="out of range for a 1-D"):
                    fake_quant(x, fmt, backend=backend)
            continue
        assert_same_bits(*both(x, fmt, None), f"{name} {shape}")


@pytest.mark.parametrize(
    "name", ["fp8_e4m3", "int8_axis0", "int4_block", "nvfp4_static", "fp8_e4m3_block_2d"]
)
def test_amax_from_the_data_when_none_is_given(name: str) -> None:
    fmt = format_named(name)
    x = edge_tensor((37, 70), torch.float16, seed=5)
    actual, expected = both(x, fmt, None)
    assert_same_bits(actual, expected, name)
    assert_same_bits(actual, fake_quant(x, fmt, reduce_amax(x, fmt), backend="triton"), name)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize(
    "name", ["fp8_e4m3", "fp8_e5m2", "int8", "uint8", "int2_narrow", "mxfp4", "mxint8"]
)
def test_ties_and_saturation_match(name: str, dtype_name: str) -> None:
    fmt = format_named(name)
    x = tie_tensor(DTYPES[dtype_name])
    for amax_value in (1.0, 6.0, 127.0, 448.0, 57344.0):
        amax = torch.tensor(amax_value)
        actual, expected = both(x, fmt, amax)
        assert_same_bits(actual, expected, f"{name} amax={amax_value}")


def test_nvfp4_ties_match() -> None:
    # A global amax of 2688 makes the global scale 1 and a block amax of 6 a block scale of 1,
    # so the planted values are exactly the E2M1 rounding thresholds.
    fmt = format_named("nvfp4")
    row = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0] * 2)
    x = torch.stack([row, -row, row * 0.5])
    x[0, 15] = 2688.0
    for dtype in DTYPES.values():
        actual, expected = both(x.to(dtype), fmt, None)
        assert_same_bits(actual, expected, f"nvfp4 ties {dtype}")


def test_random_bit_patterns_match() -> None:
    """Arbitrary float32 bit patterns: every exponent, subnormals, NaN payloads, infinities."""
    generator = torch.Generator().manual_seed(1)
    patterns = torch.randint(-(2**31), 2**31 - 1, (64, 256), generator=generator, dtype=torch.int64)
    x = patterns.to(torch.int32).view(torch.float32)
    for name in ("fp8_e4m3_axis0", "int8_axis0", "nvfp4", "mxfp8", "mxfp6_e2m3"):
        fmt = format_named(name)
        actual, expected = both(x, fmt, None)
        assert_same_bits(actual, expected, name)
        amax = torch.full(fmt.amax_shape(x.shape), 3.0)
        if fmt.needs_calibration:
            actual, expected = both(x, fmt, amax)
            assert_same_bits(actual, expected, f"{name} with amax 3")


def test_bfloat16_output_rounding_is_exact() -> None:
    """Every bf16 value quantized with a scale that maps it between bf16 neighbours."""
    everything = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    x = everything.reshape(256, 256)
    for name in ("int8", "fp8_e4m3"):
        fmt = format_named(name)
        actual, expected = both(x, fmt, torch.tensor(0.3))
        assert_same_bits(actual, expected, name)


def test_zero_and_non_finite_amax() -> None:
    x = edge_tensor((8, 48), torch.float32)
    finite = torch.isfinite(x)
    for name in ("fp8_e4m3", "int8", "int4_block", "nvfp4_static"):
        fmt = format_named(name)
        zero = torch.zeros(fmt.amax_shape(x.shape))
        actual, expected = both(x, fmt, zero)
        assert_same_bits(actual, expected, f"{name} zero amax")
        assert (actual[finite] == 0).all()
        assert torch.equal(torch.signbit(actual[finite]), torch.signbit(x[finite]))
        nan = torch.full(fmt.amax_shape(x.shape), float("nan"))
        actual, expected = both(x, fmt, nan)
        assert_same_bits(actual, expected, f"{name} NaN amax")
        assert torch.isnan(actual[finite]).all()


def test_single_amax_broadcasts_and_wrong_shape_is_refused() -> None:
    x = edge_tensor((6, 64), torch.float32)
    fmt = format_named("int4_block")
    scalar = fake_quant(x, fmt, torch.tensor(2.0), backend="triton")
    table = fake_quant(x, fmt, torch.full((6, 4), 2.0), backend="triton")
    assert_same_bits(scalar, table, "broadcast amax")
    flat = fake_quant(x, fmt, torch.full((24,), 2.0), backend="triton")
    assert_same_bits(flat, table, "flat amax with the right count")
    for backend in ("triton", "torch"):
        with pytest.raises(ValueError, match=r"amax of shape \(5,\)"):
            fake_quant(x, fmt, torch.ones(5), backend=backend)


def test_channel_axes_not_adjacent() -> None:
    fmt = QuantFormat.from_cfg({"num_bits": 8, "axis": [0, 2]})
    x = edge_tensor((5, 7, 9), torch.float16)
    amax = reduce_amax(x, fmt, backend="triton")
    assert amax.shape == (5, 1, 9)
    assert_same_bits(amax, reduce_amax(x, fmt, backend="torch"), "amax")
    assert_same_bits(*both(x, fmt, amax), "qdq")


def test_non_contiguous_input() -> None:
    x = edge_tensor((48, 40), torch.bfloat16).t()
    for name in ("fp8_e4m3_axis0", "nvfp4", "int4_block"):
        fmt = format_named(name)
        actual, expected = both(x, fmt, None)
        assert_same_bits(actual, expected, name)
        assert_same_bits(actual, fake_quant(x.contiguous(), fmt, backend="triton"), name)


def test_scalar_and_empty_tensors() -> None:
    fmt = format_named("fp8_e4m3")
    x = torch.tensor(3.7)
    assert_same_bits(*both(x, fmt, None), "0-d")
    assert reduce_amax(x, fmt, backend="triton").item() == pytest.approx(3.7)
    empty = torch.empty(0, 16)
    for backend in ("triton", "torch"):
        assert fake_quant(empty, fmt, backend=backend).shape == (0, 16)
        assert reduce_amax(empty, fmt, backend=backend).item() == 0.0


def test_output_dtype_is_input_dtype_and_rejects_others() -> None:
    fmt = format_named("int8")
    for dtype in DTYPES.values():
        assert fake_quant(torch.ones(4, dtype=dtype), fmt, backend="triton").dtype == dtype
    for backend in ("triton", "torch"):
        with pytest.raises(TypeError, match="float64"):
            fake_quant(torch.ones(4, dtype=torch.float64), fmt, backend=backend)


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = format_named("fp8_e4m3")
    x = edge_tensor((4, 32), torch.float32)
    assert_same_bits(fake_quant(x, fmt, backend="auto"), fake_quant(x, fmt, backend="torch"), "")
    with pytest.raises(ValueError, match="backend 'cuda'"):
        fake_quant(x, fmt, backend="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CUDA tensors"):
        fake_quant(x, fmt, backend="triton")


def test_gradients_do_not_flow_through_fake_quant() -> None:
    x = torch.randn(4, 32, requires_grad=True)
    y = fake_quant(x, format_named("fp8_e4m3"), backend="triton")
    assert not y.requires_grad


def test_block_axes_beyond_the_last_two_are_refused() -> None:
    fmt = QuantFormat.from_cfg({"num_bits": 8, "block_sizes": {"0": 4}})
    with pytest.raises(UnsupportedFormatError, match="last two axes"):
        fake_quant(torch.ones(8, 8, 8), fmt, backend="triton")
    # ...but axis 0 of a matrix is its second-to-last axis.
    matrix = edge_tensor((8, 8), torch.float32)
    assert_same_bits(*both(matrix, fmt, None), "axis 0 blocks of a matrix")
