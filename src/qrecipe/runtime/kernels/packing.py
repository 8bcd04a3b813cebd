"""Real low-precision storage: the codes and scales a checkpoint holds, and back to numbers.

Encoding follows the checkpoint layout of ModelOpt 0.47's exporter, operation for operation,
so that the same weights and amax give the same bytes (``tests/runtime/test_export.py``
compares them):

* FP8 E4M3 weights: ``code = fp8(weight / weight_scale)``; ``weight_scale = amax / 448``.
* NVFP4 weights: ``weight_scale_2 = amax / (6 * 448)`` (per tensor), ``weight_scale`` one FP8
  E4M3 value per block of 16, ``fp8(clamp(block_amax / (6 * weight_scale_2), 2**-9, 448))``;
  elements E2M1, two per byte, the even index in the low nibble.
* INT4 (AWQ layout): ``weight_scale = amax / 7`` per block along the input axis; codes
  ``round(weight / weight_scale)`` in [-8, 7], two per byte along the *output* axis (rows
  ``2i`` in the low nibble, ``2i + 1`` in the high one).
* INT4 in compressed-tensors' ``pack-quantized`` layout: the same codes, eight per int32
  along the *input* axis, code ``j`` of a word in bits ``4j`` to ``4j + 3``, each stored as
  ``code + 8``.

Decoding is the arithmetic a serving engine performs: ``code * scale`` in float32 (for NVFP4,
``code * (weight_scale * weight_scale_2)``), rounded once to the compute dtype. The Triton
version (:mod:`.triton_dequant`) gives the same bits.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor

from .table import E2M1_MAX, E4M3_MAX, E4M3_MIN_SUBNORMAL, NVFP4_GLOBAL_DIVISOR

__all__ = [
    "E2M1_MAGNITUDES",
    "INT4_MAX",
    "decode_e2m1",
    "dequantize_fp8",
    "dequantize_int4",
    "dequantize_nvfp4",
    "encode_e2m1",
    "fp8_scale",
    "int4_scale",
    "int4_words_to_rows",
    "nvfp4_block_scale",
    "nvfp4_global_scale",
    "pack_int4_rows",
    "pack_int4_words",
    "pack_nibbles",
    "quantize_fp8",
    "quantize_int4",
    "quantize_nvfp4",
    "unpack_int4_rows",
    "unpack_int4_words",
    "unpack_nibbles",
]

E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
"""The E2M1 values of codes 0..7; codes 8..15 are their negatives (sign in bit 3)."""
# Rounding boundaries between neighbouring magnitudes; at the odd ones (0.75, 1.75, 3.5) the
# even neighbour is the upper one, so a value exactly there rounds up.
_E2M1_BOUNDS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)
_E2M1_ROUND_UP_TIES = (0.75, 1.75, 3.5)
INT4_MAX = 7
INT4_MIN = -8


def _positive(amax: Tensor, bound: float) -> Tensor:
    """``amax`` in float32 with zero (or NaN) entries replaced by ``bound``.

    A zero amax means a tensor (or block) of zeros; its codes are zero whatever the scale, and
    a scale of ``bound / bound = 1`` keeps every exported scale positive, as ModelOpt's export
    does.
    """
    amax = amax.detach().float()
    return torch.nan_to_num(torch.where(amax <= 0, torch.full_like(amax, bound), amax), nan=bound)


# -- FP8 ---------------------------------------------------------------------------------------


def fp8_scale(amax: Tensor) -> Tensor:
    """The per-tensor (or per-channel) FP8 scale ``amax / 448``, float32."""
    return _positive(amax, E4M3_MAX) / E4M3_MAX


def quantize_fp8(weight: Tensor, scale: Tensor) -> Tensor:
    """``float8_e4m3fn`` codes of ``weight`` (in its own dtype) for a per-tensor ``scale``.

    The division happens in the weight's dtype when ``scale`` is a 0-d tensor (PyTorch's type
    promotion), exactly as in ModelOpt's exporter; the cast rounds to nearest even and
    saturates at 448.
    """
    if scale.dim() == 0:
        return (weight / scale).to(torch.float8_e4m3fn)
    return (weight / scale.reshape(-1, *([1] * (weight.dim() - 1)))).to(torch.float8_e4m3fn)


def dequantize_fp8(codes: Tensor, scale: Tensor, dtype: torch.dtype) -> Tensor:
    """``codes * scale`` in float32 (``scale`` broadcasts), rounded once to ``dtype``."""
    return (codes.float() * scale.float()).to(dtype)


# -- NVFP4 ------------------------------------------------------------------------------------


def nvfp4_global_scale(amax: Tensor) -> Tensor:
    """``weight_scale_2``: the per-tensor amax over 6 * 448, float32."""
    return _positive(amax, NVFP4_GLOBAL_DIVISOR) / NVFP4_GLOBAL_DIVISOR


def nvfp4_block_scale(weight: Tensor, global_scale: Tensor, block: int) -> Tensor:
    """``weight_scale``: one FP8 E4M3 scale per block of ``block`` values on the last axis."""
    blocks = weight.float().reshape(*weight.shape[:-1], -1, block)
    block_amax = blocks.abs().amax(dim=-1)
    scale = block_amax / (E2M1_MAX * global_scale)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return scale.clamp(min=E4M3_MIN_SUBNORMAL, max=E4M3_MAX).to(torch.float8_e4m3fn)


def encode_e2m1(values: Tensor) -> Tensor:
    """E2M1 codes (uint8, 0..15) of float32 values already divided by their scales.

    Magnitudes round to the nearest E2M1 value, ties to the even one; beyond 6 they saturate.
    """
    bounds = torch.tensor(_E2M1_BOUNDS, device=values.device)
    magnitude = values.abs()
    code = torch.searchsorted(bounds, magnitude, out_int32=True).to(torch.uint8)
    ties = torch.tensor(_E2M1_ROUND_UP_TIES, device=values.device)
    code = code + torch.isin(magnitude, ties).to(torch.uint8)
    return code + ((values < 0).to(torch.uint8) << 3)


def decode_e2m1(codes: Tensor) -> Tensor:
    """Float32 values of E2M1 codes (uint8, 0..15)."""
    table = torch.tensor(E2M1_MAGNITUDES, device=codes.device)
    magnitude = table[(codes & 7).long()]
    return torch.where((codes & 8) != 0, -magnitude, magnitude)


def pack_nibbles(codes: Tensor) -> Tensor:
    """Two 4-bit codes per byte along the last axis, the even index in the low nibble."""
    return (codes[..., 1::2] << 4) | codes[..., 0::2]


def unpack_nibbles(packed: Tensor) -> Tensor:
    """The 4-bit codes of :func:`pack_nibbles`, the last axis twice as long."""
    low, high = packed & 0x0F, packed >> 4
    return torch.stack((low, high), dim=-1).reshape(*packed.shape[:-1], -1)


def quantize_nvfp4(weight: Tensor, block_scale: Tensor, global_scale: Tensor, block: int) -> Tensor:
    """Packed E2M1 codes (uint8, last axis halved) of ``weight`` for the given scales."""
    blocks = weight.reshape(*weight.shape[:-1], -1, block)
    scaled = blocks / (block_scale.float() * global_scale).unsqueeze(-1)
    return pack_nibbles(encode_e2m1(scaled.reshape(weight.shape)))


def dequantize_nvfp4(
    packed: Tensor, block_scale: Tensor, global_scale: Tensor, dtype: torch.dtype
) -> Tensor:
    """``code * (weight_scale * weight_scale_2)`` in float32, rounded once to ``dtype``."""
    values = decode_e2m1(unpack_nibbles(packed))
    block = values.shape[-1] // block_scale.shape[-1]
    scale = (block_scale.float() * global_scale.float()).repeat_interleave(block, dim=-1)
    return (values * scale).to(dtype)


# -- INT4 (AWQ layout) -----------------------------------------------------------------------


def int4_scale(amax: Tensor) -> Tensor:
    """``weight_scale``: the per-block amax over 7, float32, shape (out, in / block)."""
    return _positive(amax, INT4_MAX) / INT4_MAX


def quantize_int4(weight: Tensor, scale: Tensor) -> Tensor:
    """Signed INT4 codes (int8, -8..7) of ``weight`` for per-block scales along the last axis."""
    block = weight.shape[-1] // scale.shape[-1]
    expanded = scale.repeat_interleave(block, dim=-1)
    return (weight / expanded).round().clamp(INT4_MIN, INT4_MAX).to(torch.int8)


def pack_int4_rows(codes: Tensor) -> Tensor:
    """Two INT4 codes per byte along the output (second to last) axis: row 2i low, 2i+1 high."""
    low = codes[..., 0::2, :] & 0x0F
    high = codes[..., 1::2, :] & 0x0F
    return (low | (high << 4)).view(torch.uint8)


def unpack_int4_rows(packed: Tensor) -> Tensor:
    """The signed codes (int8) of :func:`pack_int4_rows`, the output axis twice as long."""
    data = packed.view(torch.int8)
    # Shifting left then arithmetically right sign-extends each nibble.
    low = (data << 4) >> 4
    high = data >> 4
    return torch.stack((low, high), dim=-2).reshape(*packed.shape[:-2], -1, packed.shape[-1])


INT4_PER_WORD = 8
_WORD_SHIFTS = tuple(range(0, 32, 4))


def pack_int4_words(codes: Tensor) -> Tensor:
    """Eight signed INT4 codes (int8, -8..7) per int32 along the last axis, offset by 8."""
    if codes.shape[-1] % INT4_PER_WORD:
        raise ValueError(f"the last axis ({codes.shape[-1]}) is not a multiple of 8")
    nibbles = (codes.to(torch.int64) - INT4_MIN).reshape(*codes.shape[:-1], -1, INT4_PER_WORD)
    shifts = torch.tensor(_WORD_SHIFTS, dtype=torch.int64, device=codes.device)
    words = (nibbles << shifts).sum(dim=-1)
    # The unsigned 32-bit pattern read as a signed int32.
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def unpack_int4_words(words: Tensor) -> Tensor:
    """The signed codes (int8) of :func:`pack_int4_words`, the last axis eight times longer."""
    shifts = torch.tensor(_WORD_SHIFTS, dtype=torch.int32, device=words.device)
    nibbles = (words.unsqueeze(-1) >> shifts) & 0x0F
    return (nibbles + INT4_MIN).to(torch.int8).reshape(*words.shape[:-1], -1)


def int4_words_to_rows(words: Tensor) -> Tensor:
    """``pack_int4_rows(unpack_int4_words(words))``, holding at most a byte per code.

    A word's bytes (little-endian) hold its codes two per byte, the even index in the low
    nibble; XOR with 0x88 turns both stored ``code + 8`` nibbles into two's complement.
    """
    data = words.contiguous().view(torch.uint8)
    if sys.byteorder == "big":
        data = data.reshape(*words.shape, 4).flip(-1).reshape(*words.shape[:-1], -1)
    nibbles = data ^ 0x88
    # Bytes of rows 2r and 2r + 1: their low nibbles make column 2k, their high ones 2k + 1.
    even, odd = nibbles[..., 0::2, :], nibbles[..., 1::2, :]
    columns = ((even & 0x0F) | (odd << 4), (even >> 4) | (odd & 0xF0))
    return torch.stack(columns, dim=-1).reshape(*even.shape[:-1], -1)


def dequantize_int4(packed: Tensor, scale: Tensor, dtype: torch.dtype) -> Tensor:
    """``code * weight_scale`` in float32, rounded once to ``dtype``."""
    codes = unpack_int4_rows(packed).float()
    block = codes.shape[-1] // scale.shape[-1]
    return (codes * scale.float().repeat_interleave(block, dim=-1)).to(dtype)
