"""Packed storage: encoding and decoding of codes, and the Triton dequantization against PyTorch.

The Triton kernel runs under the interpreter here and must give the PyTorch path's bits for
every kind, dtype and code; it is also compiled for an H100 (``dequant_compile.py``, no GPU
needed), which catches what only the GPU compiler refuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from qrecipe.runtime.kernels import packing, triton_dequant  # noqa: E402
from qrecipe.runtime.packed import dequantize  # noqa: E402

pytestmark = pytest.mark.runtime

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_e2m1_codes_round_to_nearest_even_and_saturate() -> None:
    values = torch.tensor([0.0, 0.25, 0.26, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 5.1, 6.0, 9.0])
    codes = packing.encode_e2m1(torch.cat([values, -values]))
    expected = torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 6.0])
    assert torch.equal(packing.decode_e2m1(codes), torch.cat([expected, -expected]))
    assert codes[0] == 0  # zero has no sign bit
    assert torch.equal(
        packing.decode_e2m1(torch.arange(16, dtype=torch.uint8)).abs()[:8],
        torch.tensor(packing.E2M1_MAGNITUDES),
    )


def test_nibbles_and_int4_rows_round_trip() -> None:
    codes = torch.randint(0, 16, (6, 32), dtype=torch.uint8, generator=generator(0))
    packed = packing.pack_nibbles(codes)
    assert packed.shape == (6, 16)
    assert int(packed[0, 0]) == int(codes[0, 0]) | (int(codes[0, 1]) << 4)
    assert torch.equal(packing.unpack_nibbles(packed), codes)
    signed = torch.randint(-8, 8, (3, 8, 5), dtype=torch.int8, generator=generator(1))
    rows = packing.pack_int4_rows(signed)
    assert rows.shape == (3, 4, 5)
    assert torch.equal(packing.unpack_int4_rows(rows), signed)


def cases(seed: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    g = generator(seed)
    every_fp8 = torch.arange(256, dtype=torch.uint8).repeat(3, 1).view(torch.float8_e4m3fn)
    nvfp4_scales = torch.randint(0, 127, (2, 6, 4), dtype=torch.uint8, generator=g)
    int4_codes = torch.randint(0, 256, (8, 256), dtype=torch.uint8, generator=g)
    int4_scales = torch.rand(16, 2, generator=g) * 0.01
    return [
        ("fp8", every_fp8, torch.tensor(0.37), None),
        ("fp8", every_fp8, torch.rand(3, 1, generator=g), None),
        (
            "nvfp4",
            torch.randint(0, 256, (2, 6, 32), dtype=torch.uint8, generator=g),
            nvfp4_scales.view(torch.float8_e4m3fn),
            torch.rand(2, 1, 1, generator=g) * 1e-3,
        ),
        ("int4", int4_codes, int4_scales, None),
        ("int4_fp8", int4_codes, int4_scales, torch.tensor(2e-4)),  # many values saturate
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_triton_dequantization_equals_pytorch(dtype: torch.dtype) -> None:
    for kind, codes, scale, scale_2 in cases(2):
        expected = dequantize(kind, codes, scale, scale_2, dtype)
        got = triton_dequant.dequantize(kind, codes, scale, scale_2, dtype)
        assert got.dtype == dtype
        assert got.shape == expected.shape
        same = (got == expected) | (got.isnan() & expected.isnan())
        assert same.all(), f"{kind}: {int((~same).sum())} elements differ"


@pytest.mark.slow
def test_dequantization_kernel_compiles_for_sm90() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("dequant_compile.py")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 12
    failures = [f"{r['kind']}/{r['dtype']}: {r['error']}" for r in records if not r["ok"]]
    assert not failures, "\n".join(failures)


def test_int4_words_are_the_compressed_tensors_packing() -> None:
    """Eight codes per int32, as the compressed-tensors package packs and unpacks them; every
    code value at every position of a word, and stacked experts."""
    helpers = pytest.importorskip("compressed_tensors.compressors.pack_quantized.helpers")
    every = torch.arange(-8, 8, dtype=torch.int8).repeat(4)  # 64 codes: each at each position
    codes = torch.stack([every.roll(shift) for shift in range(8)])  # (8, 64)
    words = packing.pack_int4_words(codes)
    assert words.dtype == torch.int32
    assert words.shape == (8, 8)
    assert torch.equal(words, helpers.pack_to_int32(codes, 4))
    assert torch.equal(packing.unpack_int4_words(words), codes)
    assert torch.equal(helpers.unpack_from_int32(words, 4, codes.shape), codes)
    experts = torch.randint(-8, 8, (3, 6, 64), generator=generator(7)).to(torch.int8)
    stacked = packing.pack_int4_words(experts)
    assert torch.equal(packing.int4_words_to_rows(stacked), packing.pack_int4_rows(experts))
    assert torch.equal(packing.int4_words_to_rows(words), packing.pack_int4_rows(codes))
    with pytest.raises(ValueError, match="not a multiple of 8"):
        packing.pack_int4_words(codes[:, :60])
