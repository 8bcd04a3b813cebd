"""The fast PyTorch path (backend "torch") against the reference: identical bits everywhere.

The reference (backend "reference") is the definition; the fast path computes scales on the
per-group tables and rounds in place, so every format, dtype, layout and edge case is compared
bit for bit here, including NaN payloads and the sign of zero.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qrecipe.runtime.kernels import (  # noqa: E402
    QuantFormat,
    UnsupportedFormatError,
    fake_quant,
    reduce_amax,
    torch_qdq,
)
from qrecipe.runtime.kernels.catalog import FORMATS, format_named  # noqa: E402

pytestmark = pytest.mark.runtime

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
# Ragged last blocks (300 = 2 x 128 + 44 = 9 x 32 + 12 = 18 x 16 + 12), odd channel counts, a
# 3-D tensor whose 2-D blocks straddle the outer axis, and shapes that divide into whole blocks.
SHAPES = [(67, 300), (3, 37, 45), (32, 256), (2, 16, 128)]
SMALL_SHAPES = [(45,), (1, 1), (1,), (16,)]
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
            f"(fast, reference) = {samples}"
        )


def both(
    x: torch.Tensor, fmt: QuantFormat, amax: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        fake_quant(x, fmt, amax, backend="torch"),
        fake_quant(x, fmt, amax, backend="reference"),
    )


def subnormal(dtype: torch.dtype) -> float:
    return {torch.float32: 3e-40, torch.float16: 3e-6, torch.bfloat16: 3e-39}[dtype]


def edge_tensor(
    shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0, specials: bool = True
) -> torch.Tensor:
    """Random values over twelve binades; with ``specials``, every special case planted."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=generator) * torch.exp2(
        torch.randint(-6, 6, shape, generator=generator).float()
    )
    flat = values.view(-1)
    planted = [0.0, -0.0, subnormal(dtype), -subnormal(dtype), 1e-30, 3.0e4, -3.0e4]
    if specials:
        planted += [float("nan"), float("inf"), float("-inf")]
    for i, value in enumerate(planted):
        if flat.numel() > 4 * i + 3:
            flat[4 * i + 3] = value
    if len(shape) >= 2 and shape[-2] > 3:
        values[..., 2, :] = 0.0  # a zero channel, zero blocks
    if shape[-1] > 40:
        values[..., 32:40] = 0.0  # zero blocks inside rows
    return values.to(dtype)


def amaxes_for(x: torch.Tensor, fmt: QuantFormat) -> list[torch.Tensor | None]:
    """No amax, the calibrated one, one small enough to saturate most values, a single value."""
    if not (fmt.needs_calibration or fmt.accepts_global_amax):
        return [None]
    amax = reduce_amax(x, fmt, backend="reference")
    return [None, amax, amax * 0.25, torch.tensor(1.5)]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_and_dtype_matches_the_reference(name: str, dtype_name: str) -> None:
    fmt = format_named(name)
    dtype = DTYPES[dtype_name]
    for shape in SHAPES:
        for specials in (True, False):
            x = edge_tensor(shape, dtype, seed=len(shape), specials=specials)
            fast_amax = reduce_amax(x, fmt, backend="torch")
            assert_same_bits(fast_amax, reduce_amax(x, fmt, backend="reference"), f"{name} amax")
            for amax in amaxes_for(x, fmt):
                actual, expected = both(x, fmt, amax)
                given = "none" if amax is None else tuple(amax.shape)
                assert_same_bits(actual, expected, f"{name} {dtype_name} {shape} amax {given}")


@pytest.mark.parametrize("name", list(FORMATS))
def test_small_tensors_match(name: str) -> None:
    fmt = format_named(name)
    for shape in SMALL_SHAPES:
        x = edge_tensor(shape, torch.bfloat16, seed=3)
        if len(shape) == 1 and name in TWO_D_BLOCKS:
            with pytest.raises(UnsupportedFormatError, match="out of range for a 1-D"):
                fake_quant(x, fmt, backend="torch")
            continue
        assert_same_bits(*both(x, fmt, None), f"{name} {shape}")


def test_ties_and_saturation_match() -> None:
    halves = torch.arange(-64, 65, dtype=torch.float32) + 0.5
    grid_ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 1.0625, 1.1875, 448.0, 464.0])
    x = torch.cat([halves, grid_ties, -grid_ties, torch.tensor([6.0, 7.5, 28.0, 127.0])])
    x = torch.cat([x, torch.zeros(32 - x.numel() % 32)]).reshape(-1, 32)
    for name in FORMATS:
        fmt = format_named(name)
        if name in TWO_D_BLOCKS:
            continue
        for dtype in DTYPES.values():
            for amax_value in (1.0, 6.0, 127.0, 448.0, 57344.0):
                amax = torch.tensor(amax_value) if fmt.needs_calibration else None
                actual, expected = both(x.to(dtype), fmt, amax)
                assert_same_bits(actual, expected, f"{name} {dtype} amax={amax_value}")


def test_nvfp4_and_mx_thresholds_match() -> None:
    # Global amax 2688 gives a global scale of 1 and block amax 6 a block scale of 1: the planted
    # values are exactly the E2M1 thresholds. MX blocks of amax 6 have scale 1 too.
    row = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0] * 4)
    x = torch.stack([row, -row, row * 0.5, row * 2.0**-130])
    x[0, 31] = 2688.0
    for name in ("nvfp4", "nvfp4_static", "nvfp4_bs32", "mxfp4", "mxfp6_e2m3", "mxfp6_e3m2"):
        for dtype in DTYPES.values():
            actual, expected = both(x.to(dtype), format_named(name), None)
            assert_same_bits(actual, expected, f"{name} thresholds {dtype}")


def test_static_nvfp4_with_a_separate_global_amax() -> None:
    fmt = format_named("nvfp4_static")
    for dtype in DTYPES.values():
        x = edge_tensor((12, 64), dtype, seed=7)
        blocks = reduce_amax(x, fmt, backend="reference")
        largest = blocks.amax()
        for global_amax in (largest, largest * 1.5, largest * 0.5, torch.tensor(0.0)):
            fast = fake_quant(x, fmt, blocks, backend="torch", global_amax=global_amax)
            expected = fake_quant(x, fmt, blocks, backend="reference", global_amax=global_amax)
            assert_same_bits(fast, expected, f"{dtype} global amax {float(global_amax)}")
        # The tables kept for this amax follow a change of the global amax.
        first = fake_quant(x, fmt, blocks, backend="torch", global_amax=largest * 2)
        again = fake_quant(x, fmt, blocks, backend="torch", global_amax=largest * 3)
        assert not torch.equal(bits(first), bits(again))
    with pytest.raises(ValueError, match="static NVFP4 only"):
        fake_quant(x, format_named("fp8"), backend="torch", global_amax=torch.tensor(1.0))


def test_tiny_blocks_match() -> None:
    # MX: block amaxes whose ratio to the element maximum is a float32 subnormal, around the
    # smallest scale 2**-127. NVFP4: a block whose scale underflows to zero beside a huge value.
    subnormals = torch.tensor([2.0**-149, 2.0**-140, 2.0**-133, 2.0**-128, 2.0**-127 * 1.5])
    tiny = torch.cat([subnormals * 6.0, subnormals * 448.0, subnormals * 7.0, subnormals * 127.0])
    x = (tiny.reshape(-1, 1) * torch.linspace(-1.0, 1.0, 32)).reshape(-1, 32)
    x[0, 5] = 3.0e38
    for name in FORMATS:
        if name in TWO_D_BLOCKS:
            continue
        fmt = format_named(name)
        assert_same_bits(*both(x, fmt, None), name)
        assert_same_bits(*both(x[1:], fmt, None), f"{name} without the huge value")


def test_random_bit_patterns_match() -> None:
    """Arbitrary float32 bit patterns: every exponent, subnormals, NaN payloads, infinities."""
    generator = torch.Generator().manual_seed(1)
    patterns = torch.randint(-(2**31), 2**31 - 1, (64, 256), generator=generator, dtype=torch.int64)
    x = patterns.to(torch.int32).view(torch.float32)
    for name in FORMATS:
        fmt = format_named(name)
        assert_same_bits(*both(x, fmt, None), name)
        if fmt.needs_calibration:
            amax = torch.full(fmt.amax_shape(x.shape), 3.0)
            assert_same_bits(*both(x, fmt, amax), f"{name} with amax 3")


def test_every_bfloat16_and_float16_value() -> None:
    everything = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16)
    for dtype in (torch.bfloat16, torch.float16):
        x = everything.view(dtype).reshape(256, 256)
        for name in ("int8", "fp8_e4m3", "fp8_e5m2", "uint8", "mxfp8", "nvfp4"):
            fmt = format_named(name)
            amax = torch.tensor(0.3) if fmt.needs_calibration else None
            assert_same_bits(*both(x, fmt, amax), f"{name} {dtype}")


def test_zero_non_finite_and_subnormal_amax() -> None:
    x = edge_tensor((8, 48), torch.float32)
    for name in FORMATS:
        fmt = format_named(name)
        if not (fmt.needs_calibration or fmt.accepts_global_amax):
            continue
        shape = fmt.amax_shape(x.shape)
        tables = [torch.zeros(shape), torch.full(shape, float("nan")), torch.full(shape, 1e-40)]
        inf = torch.full(shape, float("inf"))
        mixed = reduce_amax(x, fmt, backend="reference").clone()
        mixed.view(-1)[0] = 0.0  # one zero group among calibrated ones
        for amax in [*tables, inf, mixed]:
            assert_same_bits(*both(x, fmt, amax), f"{name} amax {amax.view(-1)[0].item()}")


def test_all_zero_and_tiny_tensors() -> None:
    for name in FORMATS:
        fmt = format_named(name)
        for x in (torch.zeros(4, 64), -torch.zeros(4, 64), torch.full((4, 64), 1e-41)):
            assert_same_bits(*both(x, fmt, None), f"{name} {x.view(-1)[0].item()}")


def test_non_contiguous_and_unusual_layouts() -> None:
    x = edge_tensor((48, 40), torch.bfloat16).t()
    expanded = torch.randn(1, 64).expand(8, 64)
    channels_last = torch.randn(2, 3, 8, 16).to(memory_format=torch.channels_last)
    for name in ("fp8_e4m3_axis0", "nvfp4", "int4_block", "mxfp4", "fp8_e4m3_block_2d", "int8"):
        fmt = format_named(name)
        for tensor in (x, expanded, channels_last, x[::2, 1:]):
            actual, expected = both(tensor, fmt, None)
            assert_same_bits(actual, expected, f"{name} {tuple(tensor.stride())}")
            assert_same_bits(
                reduce_amax(tensor, fmt, backend="torch"),
                reduce_amax(tensor, fmt, backend="reference"),
                f"{name} amax",
            )


def test_channel_axes_not_adjacent_and_whole_axis_blocks() -> None:
    x = edge_tensor((5, 7, 9), torch.float16)
    for cfg in (
        {"num_bits": 8, "axis": [0, 2]},
        {"num_bits": [4, 3], "axis": [0, 1, 2]},
        {"num_bits": [4, 3], "type": "dynamic", "block_sizes": {"-1": None, "-3": None}},
    ):
        fmt = QuantFormat.from_cfg(cfg)
        assert_same_bits(
            reduce_amax(x, fmt, backend="torch"), reduce_amax(x, fmt, backend="reference"), "amax"
        )
        for amax in amaxes_for(x, fmt):
            assert_same_bits(*both(x, fmt, amax), f"{cfg}")


def test_the_input_is_never_modified() -> None:
    for name in FORMATS:
        fmt = format_named(name)
        x = edge_tensor((16, 64), torch.float32)
        before = x.clone()
        fake_quant(x, fmt, backend="torch")
        assert_same_bits(x, before, name)


def test_tables_follow_in_place_changes_of_amax() -> None:
    # Calibration updates amax in place; the tables kept with it must follow.
    x = edge_tensor((16, 256), torch.float32, specials=False)
    for name in ("fp8_e4m3", "int8_axis0", "int4_block", "nvfp4_static", "fp8_e4m3_block_2d"):
        fmt = format_named(name)
        amax = reduce_amax(x, fmt, backend="reference")
        first = fake_quant(x, fmt, amax, backend="torch")
        amax.mul_(0.5)
        assert_same_bits(fake_quant(x, fmt, amax, backend="torch"), both(x, fmt, amax)[1], name)
        amax.copy_(amax * 2.0)
        assert_same_bits(fake_quant(x, fmt, amax, backend="torch"), first, f"{name} restored")


def test_the_fast_path_does_not_hand_common_cases_to_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = torch_qdq.reference.fake_quant

    def counting(
        x: torch.Tensor,
        fmt: QuantFormat,
        amax: torch.Tensor | None = None,
        global_amax: torch.Tensor | None = None,
    ):
        calls.append(fmt.describe())
        return original(x, fmt, amax, global_amax)

    monkeypatch.setattr(torch_qdq.reference, "fake_quant", counting)
    for name in FORMATS:
        fmt = format_named(name)
        for dtype in DTYPES.values():
            x = edge_tensor((16, 96), dtype)  # NaN, infinities, zero blocks, subnormals
            amax = reduce_amax(x, fmt, backend="reference") if fmt.needs_calibration else None
            fake_quant(x, fmt, amax, backend="torch")
    assert calls == []
    # A non-finite amax is left to the reference (its NaN results are the reference's own).
    x = edge_tensor((16, 96), torch.float32)
    fake_quant(x, format_named("uint8"), torch.tensor(0.0), backend="torch")
    fake_quant(x, format_named("int8"), torch.tensor(float("nan")), backend="torch")
    assert calls == ["INT8 per-tensor"]


def test_large_tensors_are_rounded_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_qdq, "CHUNK", 1000)
    x = edge_tensor((37, 300), torch.bfloat16)
    for name in ("fp8_e4m3", "fp8_e5m2_axis0", "nvfp4", "mxfp6_e3m2", "int8"):
        assert_same_bits(*both(x, format_named(name), None), name)


def test_errors_are_the_reference_errors() -> None:
    fmt = format_named("int4_block")
    x = edge_tensor((6, 64), torch.float32)
    with pytest.raises(ValueError, match=r"amax of shape \(5,\)"):
        fake_quant(x, fmt, torch.ones(5), backend="torch")
    with pytest.raises(TypeError, match="float64"):
        fake_quant(torch.ones(4, dtype=torch.float64), fmt, backend="torch")
    with pytest.raises(ValueError, match="at least one axis"):
        fake_quant(torch.tensor(1.0), fmt, backend="torch")
    with pytest.raises(ValueError, match="backend 'fast'"):
        fake_quant(x, fmt, backend="fast")
    assert fake_quant(torch.empty(0, 16), fmt, backend="torch").shape == (0, 16)
    assert reduce_amax(torch.empty(0, 16), format_named("fp8"), backend="torch").item() == 0.0


_FORMAT_NAMES = sorted(FORMATS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(_FORMAT_NAMES),
    dtype=st.sampled_from(list(DTYPES.values())),
    rows=st.integers(1, 9),
    cols=st.integers(1, 70),
    exponent=st.integers(-40, 40),
    amax_factor=st.sampled_from([None, 0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_and_scales_match(
    name: str,
    dtype: torch.dtype,
    rows: int,
    cols: int,
    exponent: int,
    amax_factor: float | None,
    seed: int,
) -> None:
    fmt = format_named(name)
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, cols, generator=generator) * 2.0**exponent).to(dtype)
    amax = None
    if amax_factor is not None and (fmt.needs_calibration or fmt.accepts_global_amax):
        amax = reduce_amax(x, fmt, backend="reference") * amax_factor
    assert_same_bits(*both(x, fmt, amax), f"{name} {dtype} {rows}x{cols} 2**{exponent}")
