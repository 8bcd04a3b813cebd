"""Weights kept in their packed low-precision form and dequantized for each forward call.

A :class:`PackedWeight` holds one weight's codes and scales as buffers (FP8 codes, or two 4-bit
codes per byte) and turns them back into a tensor of the compute dtype on demand, with
:mod:`.kernels.packing` (PyTorch) or :mod:`.kernels.triton_dequant` (Triton, for CUDA
tensors). :func:`attach` replaces a module's weight parameters by packed ones: at rest the
module holds only the packed bytes; for the duration of a forward call its parameter entry
holds the dequantized tensor, so the module's own forward runs unchanged (linear layers and
fused experts alike).

Scales broadcast against the codes: per tensor (a single value), per output row (``[..., out,
1]``) or per block (``[..., out, in / block]``); a leading axis stacks experts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .kernels import packing

PackedKind = Literal["fp8", "nvfp4", "int4", "int4_fp8"]
PACKED_SUFFIX = "_packed"
# Owner attribute listing its packed parameters and the input smoothing (a plain attribute,
# so that pickling keeps it).
PACKED_ATTR = "_qrecipe_packed"


class PackedWeight(nn.Module):
    """One weight as codes and scales; :meth:`dequantize` gives it back in a float dtype."""

    codes: Tensor
    scale: Tensor
    scale_2: Tensor | None

    def __init__(
        self,
        kind: PackedKind,
        codes: Tensor,
        scale: Tensor,
        scale_2: Tensor | None = None,
        *,
        dtype: torch.dtype = torch.bfloat16,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.kind: PackedKind = kind
        self.dtype = dtype
        self.backend = backend
        self.register_buffer("codes", codes)
        self.register_buffer("scale", scale)
        self.register_buffer("scale_2", scale_2)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the dequantized weight."""
        shape = list(self.codes.shape)
        if self.kind == "nvfp4":
            shape[-1] *= 2
        elif self.kind in ("int4", "int4_fp8"):
            shape[-2] *= 2
        return tuple(shape)

    def packed_bytes(self) -> int:
        """Bytes held: codes and scales."""
        tensors = [self.codes, self.scale] + ([self.scale_2] if self.scale_2 is not None else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def dequantize(self, dtype: torch.dtype | None = None) -> Tensor:
        """The weight in ``dtype`` (default: the model's), computed as serving engines do."""
        dtype = dtype or self.dtype
        if _use_triton(self.codes, self.backend):
            from .kernels import triton_dequant

            return triton_dequant.dequantize(self.kind, self.codes, self.scale, self.scale_2, dtype)
        return dequantize(self.kind, self.codes, self.scale, self.scale_2, dtype)

    def extra_repr(self) -> str:
        return f"{self.kind}, shape={self.shape}, {self.packed_bytes()} bytes"


def _use_triton(codes: Tensor, backend: str) -> bool:
    if backend == "auto":
        return codes.is_cuda
    return backend == "triton"


def dequantize(
    kind: PackedKind, codes: Tensor, scale: Tensor, scale_2: Tensor | None, dtype: torch.dtype
) -> Tensor:
    """The PyTorch dequantization of every packed kind (see :mod:`.kernels.packing`)."""
    if kind == "fp8":
        return packing.dequantize_fp8(codes, scale, dtype)
    if kind == "nvfp4":
        assert scale_2 is not None
        return packing.dequantize_nvfp4(codes, scale, scale_2, dtype)
    first = packing.dequantize_int4(codes, scale, dtype)
    if kind == "int4":
        return first
    # W4A8: the INT4 weight, in the model's dtype, then its FP8 stage (as the recipe applies
    # the two quantizers one after the other).
    assert scale_2 is not None
    fp8 = (first.float() / scale_2.float()).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
    return (fp8.float() * scale_2.float()).to(dtype)


def packed_weights(module: nn.Module) -> dict[str, PackedWeight]:
    """The packed parameters of ``module``, by parameter name."""
    state = module.__dict__.get(PACKED_ATTR)
    if state is None:
        return {}
    out = {}
    for name in state["params"]:
        child = module._modules.get(name + PACKED_SUFFIX)
        if isinstance(child, PackedWeight):
            out[name] = child
    return out


def attach(
    module: nn.Module, weights: Mapping[str, PackedWeight], smoothing: Tensor | None = None
) -> None:
    """Replace the parameters named in ``weights`` by packed weights, dequantized per call.

    ``smoothing``: an AWQ pre-quantization scale the input is multiplied by first (before any
    input quantizer sees it).
    """
    for name, packed in weights.items():
        module._parameters.pop(name, None)
        module.add_module(name + PACKED_SUFFIX, packed)
    if smoothing is not None:
        module.register_buffer("pre_quant_scale", smoothing)
    if PACKED_ATTR not in module.__dict__:
        # Prepended: the input is smoothed before a quantizer's own hook quantizes it.
        module.register_forward_pre_hook(_pre_hook, with_kwargs=True, prepend=True)
        module.register_forward_hook(_post_hook, always_call=True)
        module.__dict__[PACKED_ATTR] = {"params": []}
    module.__dict__[PACKED_ATTR]["params"] += list(weights)


def _pre_hook(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    parameters: dict[str, Any] = module._parameters
    for name, packed in packed_weights(module).items():
        # A plain tensor stands in for the parameter for this call only (see the post-hook).
        parameters[name] = packed.dequantize()
    smoothing = module._buffers.get("pre_quant_scale")
    if smoothing is not None:
        if args and isinstance(args[0], Tensor):
            args = (args[0] * smoothing.to(args[0].dtype), *args[1:])
        elif isinstance(kwargs.get("input"), Tensor):
            kwargs = {**kwargs, "input": kwargs["input"] * smoothing.to(kwargs["input"].dtype)}
    return args, kwargs


def _post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
    for name in packed_weights(module):
        module._parameters.pop(name, None)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer: the model's weight memory at rest."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
