"""qrecipe's fake quantization against ModelOpt's, on the same inputs and amax (CPU paths).

ModelOpt's CPU paths: ``TensorQuantizer`` for FP8 and integer formats (per tensor, per channel,
static blocks), and the ``NVFP4QTensor`` / ``MXFP4QTensor`` / ``MXFP8QTensor`` quantize ->
dequantize round trips (its fused dynamic-block kernels need CUDA). Where the two differ on
purpose, the difference is asserted exactly as docs/runtime-numerics.md describes it.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("modelopt.torch.quantization")
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer
    from modelopt.torch.quantization.qtensor import MXFP4QTensor, MXFP8QTensor, NVFP4QTensor

from qrecipe.runtime.kernels import QuantFormat, fake_quant, reduce_amax  # noqa: E402

pytestmark = [pytest.mark.runtime, pytest.mark.filterwarnings("ignore::UserWarning")]

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
BACKENDS = ["torch", "triton"]


def inputs(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Finite values over several binades, with zero rows/blocks and subnormals."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * torch.exp2(
        torch.randint(-5, 5, shape, generator=generator).float()
    )
    x[..., 1, :] = 0.0
    x.view(-1)[7] = 1e-7
    return x.to(dtype)


def ours(x: torch.Tensor, cfg: dict, amax: torch.Tensor | None, backend: str) -> torch.Tensor:
    return fake_quant(x, QuantFormat.from_cfg(cfg), amax, backend=backend)


def modelopt_quantizer(cfg: dict, amax: torch.Tensor) -> TensorQuantizer:
    quantizer = TensorQuantizer(QuantizerAttributeConfig(**cfg))
    quantizer.amax = amax
    return quantizer


def assert_equal(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.dtype == expected.dtype, what
    differ = actual != expected
    assert not differ.any(), (
        f"{what}: {int(differ.sum())} elements differ, e.g. "
        f"{list(zip(actual[differ][:4].tolist(), expected[differ][:4].tolist(), strict=True))}"
    )


# (qrecipe flat attributes, ModelOpt attributes, how ModelOpt holds the amax)
TENSOR_QUANTIZER_CASES = {
    "fp8_per_tensor": ({"num_bits": [4, 3]}, {"num_bits": (4, 3)}, None),
    "fp8_per_channel": ({"num_bits": [4, 3], "axis": 0}, {"num_bits": (4, 3), "axis": 0}, None),
    "int8_per_tensor": ({"num_bits": 8}, {"num_bits": 8}, None),
    "int8_per_channel": ({"num_bits": 8, "axis": 0}, {"num_bits": 8, "axis": 0}, None),
    "int8_narrow_last_axis": (
        {"num_bits": 8, "axis": -1, "narrow_range": True},
        {"num_bits": 8, "axis": -1, "narrow_range": True},
        None,
    ),
    "int4_block_128": (
        {"num_bits": 4, "block_sizes": {"-1": 128, "type": "static"}},
        {"num_bits": 4, "block_sizes": {-1: 128, "type": "static"}},
        "rows",
    ),
    "fp8_block_128x128": (
        {"num_bits": [4, 3], "block_sizes": {"-1": 128, "-2": 128}},
        {"num_bits": (4, 3), "block_sizes": {-1: 128, -2: 128}},
        "grid",
    ),
}


def modelopt_amax(amax: torch.Tensor, layout: str | None) -> torch.Tensor:
    if layout == "rows":  # one row per block, in row-major block order
        return amax.reshape(-1, 1)
    if layout == "grid":  # [blocks down, 1, blocks across, 1]
        return amax.reshape(amax.shape[0], 1, amax.shape[1], 1)
    return amax


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(TENSOR_QUANTIZER_CASES))
def test_tensor_quantizer_formats(case: str, dtype: torch.dtype, backend: str) -> None:
    cfg, modelopt_cfg, layout = TENSOR_QUANTIZER_CASES[case]
    # 200 columns: the last 128-block of each row is ragged (ModelOpt pads it with zeros).
    shape = (256, 200) if "128x128" in case else (48, 200 if "block" in case else 96)
    x = inputs(shape, dtype)
    fmt = QuantFormat.from_cfg(cfg)
    amax = reduce_amax(x, fmt, backend="torch")
    if "fp8" in case:
        amax = torch.where(amax == 0, torch.ones_like(amax), amax)  # see the zero-amax test
    for scale in (1.0, 0.3):  # 0.3: many values beyond amax (saturation)
        expected = modelopt_quantizer(modelopt_cfg, modelopt_amax(amax * scale, layout))(x)
        assert_equal(ours(x, cfg, amax * scale, backend), expected, f"{case} x{scale}")


def test_amax_statistic_matches_modelopt_calibration() -> None:
    x = inputs((32, 64), torch.bfloat16)
    for cfg, modelopt_cfg in (
        ({"num_bits": 8, "axis": 0}, {"num_bits": 8, "axis": 0}),
        ({"num_bits": [4, 3]}, {"num_bits": (4, 3)}),
    ):
        quantizer = TensorQuantizer(QuantizerAttributeConfig(**modelopt_cfg))
        quantizer.disable_quant()
        quantizer.enable_calib()
        quantizer(x)
        quantizer.load_calib_amax()
        ours_amax = reduce_amax(x, QuantFormat.from_cfg(cfg))
        assert torch.equal(ours_amax, quantizer.amax.float().reshape(ours_amax.shape))


def nvfp4_modelopt(x: torch.Tensor, global_amax: torch.Tensor | None = None) -> torch.Tensor:
    second = None if global_amax is None else global_amax.float() / (6.0 * 448.0)
    packed, scale, double_scale = NVFP4QTensor.quantize(x, 16, weights_scaling_factor_2=second)
    return packed.dequantize(
        dtype=x.dtype, scale=scale, double_scale=double_scale, block_sizes={-1: 16}
    )


NVFP4 = {"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]}}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nvfp4_dynamic(dtype: torch.dtype, backend: str) -> None:
    x = inputs((64, 128), dtype, seed=1)
    assert_equal(ours(x, NVFP4, None, backend), nvfp4_modelopt(x), "per-tensor amax from data")
    # A calibrated per-tensor amax (ModelOpt keeps one for dynamic NVFP4 quantizers).
    calibrated = reduce_amax(x, QuantFormat.from_cfg(NVFP4)) * 0.5
    assert_equal(ours(x, NVFP4, calibrated, backend), nvfp4_modelopt(x, calibrated), "calibrated")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mxfp8(dtype: torch.dtype, backend: str) -> None:
    x = inputs((64, 128), dtype, seed=2)
    packed, scale = MXFP8QTensor.quantize(x)
    expected = packed.dequantize(dtype=dtype, scale=scale)
    cfg = {"num_bits": [4, 3], "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}}
    assert_equal(ours(x, cfg, None, backend), expected, "mxfp8")


MXFP4 = {"num_bits": [2, 1], "block_sizes": {"-1": 32, "type": "dynamic", "scale_bits": [8, 0]}}


def mxfp4_modelopt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ModelOpt's MXFP4 round trip, and each element divided by its block's scale."""
    packed, scale = MXFP4QTensor.quantize(x, 32)
    result = packed.dequantize(dtype=x.dtype, scale=scale, block_sizes={-1: 32})
    scaled = x.float().reshape(-1, 32) / torch.exp2(scale.float() - 127)
    return result, scaled.reshape(x.shape)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mxfp4(dtype: torch.dtype, backend: str) -> None:
    x = inputs((64, 128), dtype, seed=3)
    mine = ours(x, MXFP4, None, backend)
    theirs, scaled = mxfp4_modelopt(x)
    # Equal everywhere except on the midpoints where ModelOpt rounds towards zero and qrecipe
    # to the even neighbour above (see test_mxfp4_ties_documented_difference).
    differ = mine != theirs
    assert torch.isin(scaled[differ].abs(), torch.tensor([0.75, 1.75, 3.5])).all()
    assert (mine[differ].abs() > theirs[differ].abs()).all()
    if dtype == torch.float32:
        assert not differ.any()  # random float32 data never lands on a midpoint


def test_mxfp4_ties_documented_difference() -> None:
    # Block amax 6 gives scale 1, so the values are the E2M1 rounding midpoints. qrecipe rounds
    # them to even (as NVFP4 does, in both implementations); ModelOpt's MXFP4QTensor rounds
    # every midpoint towards zero. They differ exactly where the even neighbour is the upper.
    midpoints = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0])
    x = torch.cat([midpoints, -midpoints] * 2).reshape(1, 32)
    mine = ours(x, MXFP4, None, "torch")
    theirs, _ = mxfp4_modelopt(x)
    to_even = torch.tensor([0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0])
    towards_zero = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
    assert torch.equal(mine, torch.cat([to_even, -to_even] * 2).reshape(1, 32))
    assert torch.equal(theirs, torch.cat([towards_zero, -towards_zero] * 2).reshape(1, 32))
    # The same midpoints under NVFP4: ModelOpt's NVFP4QTensor rounds to even, like qrecipe.
    nvfp4_x = torch.cat([midpoints, -midpoints]).reshape(1, 16) * 448.0
    assert torch.equal(ours(nvfp4_x, NVFP4, None, "torch"), nvfp4_modelopt(nvfp4_x))


def test_fp8_zero_amax_documented_difference() -> None:
    # ModelOpt replaces an FP8 amax at or below 2**-24 by 1 (the values are then quantized as if
    # amax were 1); qrecipe returns zeros, as it does for every format. Integers agree: zeros.
    x = inputs((4, 32), torch.float32)
    zero = torch.zeros(())
    fp8 = modelopt_quantizer({"num_bits": (4, 3)}, zero)(x)
    assert torch.equal(fp8, modelopt_quantizer({"num_bits": (4, 3)}, torch.ones(()))(x))
    assert (ours(x, {"num_bits": [4, 3]}, zero, "torch") == 0).all()
    int8 = modelopt_quantizer({"num_bits": 8}, zero)(x)
    assert (int8 == 0).all()
    assert_equal(ours(x, {"num_bits": 8}, zero, "torch"), int8, "int8 zero amax")


def test_non_finite_inputs_documented_difference() -> None:
    # ModelOpt saturates +-inf to the largest value (FP8) or code (INT8) and maps NaN to NaN for
    # FP8; qrecipe passes every non-finite input through unchanged.
    x = torch.tensor([[float("inf"), float("-inf"), float("nan"), 1.0]])
    amax = torch.tensor(2.0)
    fp8 = modelopt_quantizer({"num_bits": (4, 3)}, amax)(x)
    assert fp8[0, 0].item() == pytest.approx(2.0)
    assert fp8[0, 1].item() == pytest.approx(-2.0)
    assert torch.isnan(fp8[0, 2])
    mine = ours(x, {"num_bits": [4, 3]}, amax, "torch")
    assert mine[0, 0].item() == float("inf")
    assert mine[0, 1].item() == float("-inf")
    assert torch.isnan(mine[0, 2])
    assert mine[0, 3].item() == fp8[0, 3].item()
    int8 = modelopt_quantizer({"num_bits": 8}, amax)(x)
    assert int8[0, 0].item() == 2.0
    assert ours(x, {"num_bits": 8}, amax, "torch")[0, 0].item() == float("inf")


def test_nvfp4_all_zero_tensor_documented_difference() -> None:
    # A tensor of zeros has a zero global amax: ModelOpt divides 0 by 0 (NaN); qrecipe: zeros.
    x = torch.zeros(2, 16)
    assert torch.isnan(nvfp4_modelopt(x)).all()
    assert torch.equal(ours(x, NVFP4, None, "torch"), x)
