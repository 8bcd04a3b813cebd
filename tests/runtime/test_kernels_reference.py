"""The reference numerics against hand-computed values and independent implementations.

test_kernels.py shows the Triton kernels equal the reference; this file shows the reference
computes what docs/runtime-numerics.md says, without reusing its code paths: expected values
are written out by hand, taken from PyTorch's own FP8 casts, or computed with a threshold table.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from qrecipe.runtime.kernels import (  # noqa: E402
    SUPPORTED_FORMATS,
    QuantFormat,
    UnsupportedFormatError,
    fake_quant,
    reduce_amax,
)
from qrecipe.runtime.kernels.catalog import FORMATS, format_named  # noqa: E402
from qrecipe.runtime.kernels.reference import round_to_float_grid  # noqa: E402

pytestmark = pytest.mark.runtime

NAN, INF = float("nan"), float("inf")


def qdq(x: list[float] | torch.Tensor, cfg: dict, amax: float | None = None) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    fmt = QuantFormat.from_cfg(cfg)
    return fake_quant(x, fmt, None if amax is None else torch.tensor(amax), backend="torch")


def same(actual: torch.Tensor, expected: list[float]) -> bool:
    """Equal values, NaN where expected, and the same sign on zeros."""
    expected_t = torch.tensor(expected, dtype=actual.dtype)
    both_nan = torch.isnan(actual) & torch.isnan(expected_t)
    equal = (actual == expected_t) & (torch.signbit(actual) == torch.signbit(expected_t))
    return bool((equal | both_nan).all())


# -- integers -------------------------------------------------------------------------------------


def test_int8_rounds_half_to_even_and_saturates() -> None:
    # amax 127 makes the scale exactly 1.
    x = [0.5, 1.5, 2.5, -0.5, -1.5, 126.5, 127.4, 300.0, -300.0, -0.2]
    expected = [0.0, 2.0, 2.0, -0.0, -2.0, 126.0, 127.0, 127.0, -128.0, -0.0]
    assert same(qdq(x, {"num_bits": 8}, 127.0), expected)
    narrow = qdq(x, {"num_bits": 8, "narrow_range": True}, 127.0)
    assert narrow[8].item() == -127.0


def test_unsigned_and_small_integers() -> None:
    # 4-bit unsigned: codes 0..15; amax 15 gives scale 1; negatives clamp to 0.
    x = [-3.0, 0.5, 1.5, 14.5, 20.0]
    assert same(qdq(x, {"num_bits": 4, "unsigned": True}, 15.0), [0.0, 0.0, 2.0, 14.0, 15.0])
    # 2-bit signed: codes -2..1 (narrow: -1..1); amax 2 gives scale 1/2.
    y = qdq([-4.0, -3.0, -1.0, 1.0, 3.0], {"num_bits": 2}, 2.0)
    assert same(y, [-4.0, -4.0, -0.0, 0.0, 2.0])  # -1 * 0.5 = -0.5 rounds to -0 (even)
    y = qdq([-4.0, 3.0], {"num_bits": 2, "narrow_range": True}, 2.0)
    assert same(y, [-2.0, 2.0])


def test_int_scale_is_a_correctly_rounded_division() -> None:
    # scale = 127 / 3 and the result is code / scale, both single IEEE float32 divisions.
    scale = torch.tensor(127.0) / torch.tensor(3.0)
    x = torch.tensor([1.0, -2.2, 2.9999])
    codes = torch.tensor([42.0, -93.0, 127.0])
    assert torch.equal(qdq(x, {"num_bits": 8}, 3.0), codes / scale)


def test_int4_blocks_including_a_ragged_last_block() -> None:
    # Blocks of 4 along the last axis; the last block of each row holds 2 elements.
    x = torch.tensor([[1.0, 2.0, 3.0, 7.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0, 14.0, 1.0]])
    fmt = QuantFormat.from_cfg({"num_bits": 4, "block_sizes": {"-1": 4, "type": "static"}})
    amax = reduce_amax(x, fmt, backend="torch")
    assert amax.tolist() == [[7.0, 1.0], [0.0, 14.0]]
    y = fake_quant(x, fmt, amax, backend="torch")
    assert y[0, :4].tolist() == [1.0, 2.0, 3.0, 7.0]  # scale 7/7 = 1
    assert y[0, 4:].tolist() == [pytest.approx(4 / 7), -1.0]  # scale 7: 3.5 -> 4 (even)
    assert y[1, :4].tolist() == [0.0, 0.0, 0.0, 0.0]  # zero block
    assert y[1, 4:].tolist() == [14.0, 0.0]  # scale 7/14 = 1/2: 1 * 0.5 = 0.5 -> 0 (even)


def test_two_dimensional_blocks() -> None:
    fmt = QuantFormat.from_cfg({"num_bits": [4, 3], "block_sizes": {"-1": 2, "-2": 2}})
    x = torch.arange(1.0, 16.0).reshape(3, 5)
    amax = reduce_amax(x, fmt, backend="torch")
    # blocks: rows {0,1} x cols {0,1},{2,3},{4}; row {2} x the same
    assert amax.tolist() == [[7.0, 9.0, 10.0], [12.0, 14.0, 15.0]]


# -- floating point elements ----------------------------------------------------------------------


def every_float32_sample() -> torch.Tensor:
    """All bf16 bit patterns (every exponent, subnormals) plus random float32 mantissas."""
    every = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16).float()
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 2**16, every.shape, generator=generator, dtype=torch.int32)
    jittered = (every.view(torch.int32) | noise).view(torch.float32)
    values = torch.cat([every, jittered])
    return values[torch.isfinite(values)]


def test_e4m3_grid_equals_torch_cast() -> None:
    # PyTorch's CPU cast to float8_e4m3fn rounds to nearest even and saturates at 448.
    v = every_float32_sample()
    clamped = v.clamp(-448.0, 448.0)
    ours = round_to_float_grid(clamped, 3, -6)
    theirs = clamped.to(torch.float8_e4m3fn).float()
    assert torch.equal(ours, theirs)
    assert torch.equal(torch.signbit(ours), torch.signbit(theirs))


def test_e5m2_grid_equals_torch_cast_within_range() -> None:
    # The E5M2 cast does not saturate, so compare where it stays finite.
    v = every_float32_sample()
    v = v[v.abs() <= 57344.0]
    assert torch.equal(round_to_float_grid(v, 2, -14), v.to(torch.float8_e5m2).float())


def test_fp16_grid_equals_torch_cast() -> None:
    v = every_float32_sample()
    v = v[v.abs() <= 65504.0]
    assert torch.equal(round_to_float_grid(v, 10, -14), v.half().float())


def e2m1_by_thresholds(value: float) -> float:
    """E2M1 rounding written as the threshold table of the format's definition."""
    magnitude = abs(value)
    table = [
        (0.25, True, 0.0),
        (0.75, False, 0.5),
        (1.25, True, 1.0),
        (1.75, False, 1.5),
        (2.5, True, 2.0),
        (3.5, False, 3.0),
        (5.0, True, 4.0),
    ]
    for bound, inclusive, result in table:
        if magnitude < bound or (inclusive and magnitude == bound):
            return math.copysign(result, value)
    return math.copysign(6.0, value)


def test_e2m1_grid_equals_threshold_table() -> None:
    values = torch.cat([torch.linspace(-7, 7, 2801), torch.tensor([0.25, 0.75, 1.75, 3.5, 5.0])])
    ours = round_to_float_grid(values.clamp(-6, 6), 1, 0)
    expected = torch.tensor([e2m1_by_thresholds(v) for v in values.tolist()])
    assert torch.equal(ours, expected)


def test_fp8_per_tensor_by_hand() -> None:
    # amax 256: scale = 448 * (1/256) = 1.75 exactly; results are grid values * (1/1.75).
    inverse = torch.tensor(1.0) / torch.tensor(1.75)
    x = [256.0, 300.0, 1.0, 0.75, 0.6, -0.0001]
    # 525 saturates; 1.3125 ties between 1.25 and 1.375 and goes to the even 1.25;
    # 1.05 -> 1.0; -0.000175 is below half the smallest subnormal 2**-9 -> -0.
    grid = [448.0, 448.0, 1.75, 1.25, 1.0, -0.0]
    expected = (torch.tensor(grid) * inverse).tolist()
    assert same(qdq(x, {"num_bits": [4, 3]}, 256.0), expected)


def test_fp8_matches_torch_cast_with_scale() -> None:
    # The whole FP8 path, written with PyTorch's own cast.
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4096, generator=generator) * 10
    amax = torch.tensor(17.3)
    scale = torch.reciprocal(amax) * 448.0
    expected = (x * scale).clamp(-448, 448).to(torch.float8_e4m3fn).float() * (1 / scale)
    assert torch.equal(qdq(x, {"num_bits": [4, 3]}, 17.3), expected)


def test_non_finite_inputs_pass_through_and_do_not_enter_amax() -> None:
    x = torch.tensor([NAN, INF, -INF, 1.0, -2.0])
    fmt = format_named("fp8_e4m3")
    assert reduce_amax(x, fmt, backend="torch").item() == 2.0
    y = fake_quant(x, fmt, backend="torch")
    assert math.isnan(y[0].item())
    assert y[1].item() == INF
    assert y[2].item() == -INF
    assert y[4].item() == -2.0


def test_zero_amax_gives_signed_zeros_for_every_format() -> None:
    x = torch.tensor([[1.0, -2.0, 0.0, -0.0] * 8])
    for name in ("fp8_e4m3", "int8", "int4_block", "nvfp4", "nvfp4_static", "fp8_e5m2"):
        fmt = format_named(name)
        y = fake_quant(x, fmt, torch.tensor(0.0), backend="torch")
        assert (y == 0).all(), name
        assert torch.equal(torch.signbit(y), torch.signbit(x)), name
    # Dynamic formats with an all-zero input.
    for name in ("nvfp4", "mxfp4", "mxint8", "fp8_e4m3_per_token"):
        zeros = torch.zeros(2, 32)
        assert torch.equal(fake_quant(zeros, format_named(name), backend="torch"), zeros)


def test_half_precision_results_are_rounded_once_from_float32() -> None:
    x = torch.tensor([1.0, 3.3, -7.1, 100.0])
    fmt = format_named("int8")
    exact = fake_quant(x, fmt, torch.tensor(100.0), backend="torch")
    for dtype in (torch.float16, torch.bfloat16):
        y = fake_quant(x.to(dtype), fmt, torch.tensor(100.0), backend="torch")
        assert torch.equal(y, exact.to(dtype))


# -- NVFP4 ----------------------------------------------------------------------------------------


def test_nvfp4_by_hand() -> None:
    # Tensor amax 2688 = 6 * 448 gives a global scale of exactly 1. Block 0 has amax 2688:
    # block scale 2688 / 6 = 448 (an E4M3 value). Block 1 has amax 6: scale 1, so its values
    # are rounded on the E2M1 grid directly. Block 2 has amax 0.9: scale 0.15 rounds to the
    # E4M3 value 0.15625; 0.9 / 0.15625 = 5.76 -> 6 -> 0.9375.
    block0 = [2688.0, 100.0] + [0.0] * 14
    block1 = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, -0.3, -5.1] + [0.0] * 6
    block2 = [0.9, -0.1] + [0.0] * 14
    y = qdq([block0 + block1 + block2], FORMATS["nvfp4"])
    assert y[0, :2].tolist() == [2688.0, 0.0]  # 100 / 448 = 0.22 -> 0
    assert y[0, 16:26].tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0, -0.5, -6.0]
    assert y[0, 32:34].tolist() == [0.9375, -0.078125]  # -0.1 / 0.15625 = -0.64 -> -0.5


def test_nvfp4_block_scale_saturates_and_has_a_floor() -> None:
    # With a calibrated tensor amax far below the data, block scales clamp at 448 (values
    # saturate at 6 * 448 * g); a block far below the tensor amax gets the smallest scale 2**-9.
    fmt = format_named("nvfp4")
    x = torch.tensor([[100.0] + [0.0] * 15, [1e-6] + [0.0] * 15])
    y = fake_quant(x, fmt, torch.tensor(26.88), backend="torch")  # g = 0.01
    assert y[0, 0].item() == pytest.approx(6 * 448 * 0.01, rel=1e-6)
    assert y[1, 0].item() == 0.0  # 1e-6 / (2**-9 * 0.01) = 0.05 -> 0


def test_nvfp4_static_equals_dynamic_with_the_same_statistics() -> None:
    x = torch.randn(8, 80, generator=torch.Generator().manual_seed(4))
    dynamic, static = format_named("nvfp4"), format_named("nvfp4_static")
    table = reduce_amax(x, static, backend="torch")
    assert table.shape == (8, 5)
    assert torch.equal(
        fake_quant(x, static, table, backend="torch"), fake_quant(x, dynamic, backend="torch")
    )
    # A calibrated global amax for dynamic NVFP4 changes the result when it differs.
    other = fake_quant(x, dynamic, reduce_amax(x, dynamic) * 3, backend="torch")
    assert not torch.equal(other, fake_quant(x, dynamic, backend="torch"))


# -- MX -------------------------------------------------------------------------------------------


def test_mx_scales_by_hand() -> None:
    cfg = FORMATS["mxfp4"]
    block_a = [6.0, 1.25, 0.75] + [0.0] * 29  # amax/6 = 1: scale 1
    block_b = [7.0, -1.0] + [0.0] * 30  # 7/6 -> ceil(log2) = 1: scale 2; 3.5 -> 4 -> 8
    block_c = [12.0, 2.9] + [0.0] * 30  # 12/6 = 2 exactly: scale 2; 1.45 -> 1.5 -> 3
    block_d = [0.0] * 32
    y = qdq([block_a + block_b + block_c + block_d], cfg)
    assert y[0, :3].tolist() == [6.0, 1.0, 1.0]
    assert y[0, 32:34].tolist() == [8.0, -1.0]
    assert y[0, 64:66].tolist() == [12.0, 3.0]
    assert (y[0, 96:] == 0).all()


def test_mxint8_and_mxfp8_by_hand() -> None:
    # MXINT8: amax 254 -> 254/127 = 2 -> scale 2; 3.0 / 2 = 1.5 -> 2 -> 4.
    y = qdq([[254.0, 3.0, -5.0] + [0.0] * 29], FORMATS["mxint8"])
    assert y[0, :3].tolist() == [254.0, 4.0, -4.0]
    # MXFP8: amax 448 -> scale 1: E4M3 rounding directly (1.0625 ties to 1.0).
    y = qdq([[448.0, 1.0625, 300.0] + [0.0] * 29], FORMATS["mxfp8"])
    assert y[0, :3].tolist() == [448.0, 1.0, 288.0]


def test_mx_smallest_scale_is_two_to_the_minus_127() -> None:
    tiny = 2.0**-140
    y = qdq([[tiny] + [0.0] * 31], FORMATS["mxfp8"])
    # scale 2**-127: tiny / 2**-127 = 2**-13 is below E4M3's smallest subnormal 2**-9 -> 0
    assert y[0, 0].item() == 0.0


# -- formats: parsing, names and refusals ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "name", "calibrated"),
    [
        ({"num_bits": [4, 3], "axis": None}, "FP8 E4M3 per-tensor", True),
        ({"num_bits": [4, 3], "axis": 0}, "FP8 E4M3 per-channel(axis 0)", True),
        ({"num_bits": 8, "axis": [0, 1]}, "INT8 per-channel(axis 0,1)", True),
        ({"num_bits": 4, "block_sizes": {"-1": 128, "type": "static"}}, "INT4 per-block(128)", True),
        ({"num_bits": [4, 3], "block_sizes": {"-1": 128, "-2": 128}}, "FP8 E4M3 per-block(128x128)", True),
        ({"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]}}, "NVFP4 (16-block, E4M3 scales, dynamic)", False),
        ({"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "static", "scale_bits": [4, 3]}}, "NVFP4 (16-block, E4M3 scales, static)", True),
        ({"num_bits": [2, 1], "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}}, "MXFP4 (32-block, E8M0 scales)", False),
        ({"num_bits": 8, "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}}, "MXINT8 (32-block, E8M0 scales)", False),
        ({"num_bits": [4, 3], "type": "dynamic", "block_sizes": {"-1": None}}, "FP8 E4M3 per-channel(amax over axis -1), dynamic", False),
        ({"num_bits": 8, "unsigned": True}, "UINT8 per-tensor", True),
    ],
)  # fmt: skip
def test_describe_and_needs_calibration(cfg: dict, name: str, calibrated: bool) -> None:
    fmt = QuantFormat.from_cfg(cfg)
    assert fmt.describe() == name
    assert fmt.needs_calibration is calibrated


@pytest.mark.parametrize(
    ("cfg", "mentions"),
    [
        ({"num_bits": [4, 3], "fake_quant": False}, "fake_quant false"),
        ({"num_bits": [4, 3], "backend": "my_kernels"}, "backend 'my_kernels'"),
        ({"num_bits": 8, "bias": {"-1": None, "type": "static"}}, "bias"),
        ({"num_bits": 8, "rotate": True}, "rotate"),
        ({"num_bits": 13}, "num_bits 13"),
        ({"num_bits": 1}, "num_bits 1"),
        ({"num_bits": [1, 2]}, "E1M2"),
        ({"num_bits": [3, 0], "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}}, "E3M0"),
        ({"num_bits": [2, 1]}, "num_bits [2, 1] without block_sizes"),
        ({"num_bits": [3, 2]}, "num_bits [3, 2] without block_sizes"),
        ({"num_bits": [4, 3], "unsigned": True}, "unsigned true"),
        ({"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3], "scale_block_sizes": {"-1": 16}}}, "scale_block_sizes"),
        ({"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "static", "scale_bits": [4, 3], "four_over_six": True}}, "four_over_six"),
        ({"num_bits": [4, 3], "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]}}, "E4M3 block scales (scale_bits [4, 3]) with E4M3 elements"),
        ({"num_bits": [2, 1], "block_sizes": {"-1": 32, "type": "static", "scale_bits": [8, 0]}}, "use type dynamic"),
        ({"num_bits": 4, "block_sizes": {"-1": 32, "type": "dynamic"}}, "dynamic blocks without scale_bits"),
        ({"num_bits": 8, "block_sizes": {"-1": 32, "-2": None}}, "mixes null"),
        ({"num_bits": 8, "axis": 0, "block_sizes": {"-1": 32}}, "axis must be null"),
        ({"num_bits": [2, 1], "block_sizes": {"-2": 16, "type": "dynamic", "scale_bits": [4, 3]}}, "last axis only"),
        ({"num_bits": 8, "block_sizes": {"-1": 0}}, "positive integers"),
    ],
)  # fmt: skip
def test_unsupported_formats_are_refused_with_the_reason(cfg: dict, mentions: str) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        QuantFormat.from_cfg(cfg)
    message = str(info.value)
    assert mentions in message
    assert "Supported formats:" in message
    assert "NVFP4" in message
    assert "MXFP4" in message
    assert isinstance(info.value, ValueError)


def test_supported_formats_list_is_human_readable() -> None:
    assert len(SUPPORTED_FORMATS) >= 4
    assert all(isinstance(line, str) and line for line in SUPPORTED_FORMATS)


def test_full_flat_attribute_objects_are_accepted() -> None:
    flat = {
        "axis": None, "backend": None, "backend_extra_args": None, "bias": None,
        "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]},
        "calibrator": "max", "constant_amax": None, "effective_bits": 4.5, "enable": True,
        "fake_quant": True, "learn_amax": False, "narrow_range": False, "num_bits": [2, 1],
        "pass_through_bwd": True, "rotate": False, "trt_high_precision_dtype": "Float",
        "type": "static", "unsigned": False, "use_constant_amax": False,
    }  # fmt: skip
    assert QuantFormat.from_cfg(flat).describe() == "NVFP4 (16-block, E4M3 scales, dynamic)"


def test_library_numerics_snippets_are_supported_or_refused_with_reason() -> None:
    yaml = pytest.importorskip("yaml")
    import importlib.util

    spec = importlib.util.find_spec("modelopt_recipes")
    if spec is None or spec.submodule_search_locations is None:
        pytest.skip("the reference recipe library is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "configs" / "numerics"
    seen = {}
    for path in sorted(folder.glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        cfg = {k: _flat_value(v) for k, v in cfg.items()}
        try:
            seen[path.stem] = QuantFormat.from_cfg(cfg).describe()
        except UnsupportedFormatError as exc:
            seen[path.stem] = f"refused: {exc.problem}"
    assert seen["fp8"] == "FP8 E4M3 per-tensor"
    assert seen["int8_per_channel"] == "INT8 per-channel(axis 0)"
    assert seen["int4_per_block"] == "INT4 per-block(128)"
    assert seen["nvfp4"] == "NVFP4 (16-block, E4M3 scales, dynamic)"
    assert seen["nvfp4_static"] == "NVFP4 (16-block, E4M3 scales, static)"
    assert seen["mxfp4"] == "MXFP4 (32-block, E8M0 scales)"
    assert seen["mxfp6"] == "MXFP6 E3M2 (32-block, E8M0 scales)"
    assert seen["mxfp8"] == "MXFP8 E4M3 (32-block, E8M0 scales)"
    assert seen["mxint8"] == "MXINT8 (32-block, E8M0 scales)"
    assert seen["nvfp4_four_over_six"].startswith("refused: block_sizes.four_over_six")


def _flat_value(value: object) -> object:
    """The flat form of a snippet value: ExMy strings to pairs, integer axis keys to strings."""
    if isinstance(value, str) and value[:1] in "eE" and "m" in value.lower():
        exponent, mantissa = value[1:].lower().split("m")
        return [int(exponent), int(mantissa)]
    if isinstance(value, dict):
        return {str(k): _flat_value(v) for k, v in value.items()}
    return value
