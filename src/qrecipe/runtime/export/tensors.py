"""One layer's real low-precision tensors, from its weight and its calibrated quantizers.

The tensors are named as in ModelOpt's checkpoints (``weight``, ``weight_scale``,
``weight_scale_2``, ``input_scale``, ``pre_quant_scale``), relative to the layer; each export
format renames and reshapes them as it needs (:mod:`.modelopt`, :mod:`.compressed_tensors`).
The numbers come from :mod:`..kernels.packing`.
"""

from __future__ import annotations

from torch import Tensor

from ..kernels import reduce_amax
from ..kernels.packing import (
    fp8_scale,
    int4_scale,
    nvfp4_block_scale,
    nvfp4_global_scale,
    pack_int4_rows,
    quantize_fp8,
    quantize_int4,
    quantize_nvfp4,
)
from ..quantizer import AnyQuantizer, TensorQuantizer, iter_stages
from .schemes import ActivationKind, Scheme, Unexportable

# Attribute names under which an input quantizer may carry an AWQ pre-quantization scale.
PRE_QUANT_SCALE_ATTRS = ("pre_quant_scale", "_pre_quant_scale")


def weight_amax(stage: TensorQuantizer, weight: Tensor) -> Tensor:
    """The stage's calibrated amax, or the weight's own statistic when it has none.

    An uncalibrated weight quantizer (``algorithm: null``) takes the statistic of the tensor
    it quantizes on every call, so the checkpoint stores exactly that.
    """
    if stage.amax is not None:
        return stage.amax.detach().float().to(weight.device)
    return reduce_amax(weight, stage.fmt)


def input_scale(quantizer: AnyQuantizer | None, kind: ActivationKind | None) -> Tensor | None:
    """The static input scale of an FP8 (amax / 448) or NVFP4 (amax / 2688) input quantizer."""
    if quantizer is None or kind is None:
        return None
    stage = iter_stages(quantizer)[0]
    if stage.amax is None:
        raise Unexportable(
            "no calibration data reached its input quantizer, so the input scale is unknown "
            "(calibrate with data that reaches every quantized layer)"
        )
    amax = stage.amax.detach().float().reshape(())
    return fp8_scale(amax) if kind == "fp8" else nvfp4_global_scale(amax)


def pre_quant_scale(quantizer: AnyQuantizer | None) -> Tensor | None:
    """The AWQ pre-quantization scale an input quantizer carries, if any."""
    if quantizer is None:
        return None
    for stage in iter_stages(quantizer):
        for attr in PRE_QUANT_SCALE_ATTRS:
            value = getattr(stage, attr, None)
            if isinstance(value, Tensor):
                return value.detach().reshape(-1)
    return None


def pack_weight(weight: Tensor, quantizer: AnyQuantizer, scheme: Scheme) -> dict[str, Tensor]:
    """``weight`` (out_features, in_features) as codes and scales for ``scheme``."""
    stages = [stage for stage in iter_stages(quantizer) if stage.enabled]
    weight = weight.detach()
    if scheme.weight == "fp8":
        scale = fp8_scale(weight_amax(stages[0], weight).reshape(()))
        return {"weight": quantize_fp8(weight, scale), "weight_scale": scale}
    if scheme.weight == "nvfp4":
        global_scale = nvfp4_global_scale(weight_amax(stages[0], weight).reshape(()))
        block_scale = nvfp4_block_scale(weight, global_scale, scheme.group_size)
        packed = quantize_nvfp4(weight, block_scale, global_scale, scheme.group_size)
        return {"weight": packed, "weight_scale": block_scale, "weight_scale_2": global_scale}
    if weight.shape[-1] % scheme.group_size or weight.shape[-2] % 2:
        raise Unexportable(
            f"INT4 weights of shape {tuple(weight.shape)}: the input axis must be a multiple "
            f"of the block ({scheme.group_size}) and the output axis even"
        )
    amax = weight_amax(stages[0], weight).reshape(*weight.shape[:-1], -1)
    scale = int4_scale(amax)
    tensors = {"weight": pack_int4_rows(quantize_int4(weight, scale)), "weight_scale": scale}
    if scheme.weight == "int4_fp8":
        second = stages[1]
        if second.amax is None:
            raise Unexportable("the FP8 stage of its weight quantizer was never calibrated")
        tensors["weight_scale_2"] = fp8_scale(second.amax.detach().float().reshape(()))
    return tensors


def pack_layer(
    weight: Tensor,
    weight_quantizer: AnyQuantizer,
    input_quantizer: AnyQuantizer | None,
    scheme: Scheme,
) -> dict[str, Tensor]:
    """Every tensor one quantized linear layer stores, by ModelOpt's names."""
    tensors = pack_weight(weight, weight_quantizer, scheme)
    scale = input_scale(input_quantizer, scheme.activation)
    if scale is not None:
        tensors["input_scale"] = scale
    smoothing = pre_quant_scale(input_quantizer)
    if smoothing is not None:
        tensors["pre_quant_scale"] = smoothing
    return tensors


def kv_scale(quantizer: AnyQuantizer) -> Tensor:
    """``k_scale`` / ``v_scale``: amax / 448 for FP8 and NVFP4 KV caches alike (as ModelOpt)."""
    stage = iter_stages(quantizer)[0]
    if stage.amax is None:
        raise Unexportable("no calibration data reached its key/value quantizers")
    return stage.amax.detach().float().reshape(()) / 448.0


def to_cpu(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors on the CPU, each owning its whole storage, as safetensors requires.

    Views (the halves of a fused projection) and tensors shared between layers (the scale of
    both halves) are copied; the others are passed on as they are.
    """
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        out[name] = tensor
    return out


__all__ = [
    "input_scale",
    "kv_scale",
    "pack_layer",
    "pack_weight",
    "pre_quant_scale",
    "to_cpu",
    "weight_amax",
]
