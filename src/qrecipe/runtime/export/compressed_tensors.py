"""The layout of the ``compressed-tensors`` package (``--export-format compressed-tensors``).

What vLLM and ``transformers`` read from checkpoints llm-compressor writes:

* FP8 layers, format ``float-quantized``: ``weight`` (``float8_e4m3fn``), ``weight_scale`` and
  ``input_scale`` (one float32 value, shape ``(1,)``);
* NVFP4 layers, format ``nvfp4-pack-quantized``: ``weight_packed`` (uint8, two E2M1 codes per
  byte), ``weight_scale`` (E4M3, one per 16 values), ``weight_global_scale`` and
  ``input_global_scale`` (float32, shape ``(1,)``). The global scales are the reciprocals of
  ModelOpt's ``weight_scale_2`` and ``input_scale``, as the package's own converter from
  ModelOpt checkpoints defines them;
* INT4 weight-only layers (W4A16, blocks along the input axis), format ``pack-quantized``:
  ``weight_packed`` (int32, eight codes per word along the input axis, see
  :func:`..kernels.packing.pack_int4_words`), ``weight_scale`` (float32, ``amax / 7`` per
  block, the scale fake quantization uses) and ``weight_shape``; strategy ``group``,
  symmetric. AWQ's per-input-channel ``pre_quant_scale`` has no tensor in this layout: layers
  whose scale could not be folded into the normalization before them are refused;
* the KV cache: ``<attention>.k_scale`` and ``<attention>.v_scale``;
* ``quantization_config`` in ``config.json`` with ``quant_method: compressed-tensors``, one
  config group per scheme, ``ignore`` for the layers kept unquantized.

The codes and scales are the ones the ModelOpt layout holds; only names, shapes, the
reciprocal global scales and the packing of INT4 codes differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from ...language import Diagnostic
from ..errors import unsupported
from ..kernels.packing import int4_words_to_rows, pack_int4_words, unpack_int4_rows
from .collect import Item, KVScales, Packed, Plain
from .layout import CheckpointLayout, PackedLayer
from .schemes import ActivationKind, Scheme, Unexportable
from .survey import ExportPlan

NAME = "compressed-tensors"
METHOD = "compressed-tensors"
SCHEMES = ("FP8", "NVFP4", "W4A16_NVFP4", "W4A16_AWQ")
NVFP4_GROUP = 16
FORMATS = {
    "FP8": "float-quantized",
    "NVFP4": "nvfp4-pack-quantized",
    "W4A16_NVFP4": "nvfp4-pack-quantized",
    "W4A16_AWQ": "pack-quantized",
}
AWQ_METHODS = ("awq_lite", "awq_clip", "awq_full")
NO_PRE_QUANT_SCALE = (
    "compressed-tensors' pack-quantized layout has no per-input-channel scale "
    "(AWQ's pre_quant_scale); llm-compressor folds it into the weights before quantizing"
)
PACKAGE_VERSION = "0.20.1"
"""The version of compressed-tensors whose layout this writes (and the tests load with)."""


def _one(value: Tensor) -> Tensor:
    return value.float().reshape(1)


def _reciprocal(value: Tensor) -> Tensor:
    return torch.reciprocal(value.float()).reshape(1)


def tensors(items: Iterable[Item]) -> Iterator[tuple[str, Tensor]]:
    """The checkpoint's tensors by name."""
    for item in items:
        if isinstance(item, Plain):
            yield item.name, item.tensor
        elif isinstance(item, KVScales):
            yield f"{item.attention}.k_scale", _one(item.k_scale)
            yield f"{item.attention}.v_scale", _one(item.v_scale)
        else:
            yield from _layer_tensors(item)


def _layer_tensors(item: Packed) -> Iterator[tuple[str, Tensor]]:
    layer, values = item.layer, item.tensors
    if item.scheme.weight == "int4":
        yield from _int4_tensors(layer, values)
        return
    if item.scheme.weight == "fp8":
        yield f"{layer}.weight", values["weight"]
        yield f"{layer}.weight_scale", _one(values["weight_scale"])
        if "input_scale" in values:
            yield f"{layer}.input_scale", _one(values["input_scale"])
        return
    yield f"{layer}.weight_packed", values["weight"]
    yield f"{layer}.weight_scale", values["weight_scale"]
    yield f"{layer}.weight_global_scale", _reciprocal(values["weight_scale_2"])
    if "input_scale" in values:
        yield f"{layer}.input_global_scale", _reciprocal(values["input_scale"])


def _int4_tensors(layer: str, values: dict[str, Tensor]) -> Iterator[tuple[str, Tensor]]:
    if "pre_quant_scale" in values:
        raise Unexportable(
            f"{layer} carries an AWQ pre_quant_scale that no normalization before it absorbs: "
            f"{NO_PRE_QUANT_SCALE} (export it with --export-format modelopt, W4A16_AWQ)"
        )
    codes = unpack_int4_rows(values["weight"])
    if codes.shape[-1] % 8:
        raise Unexportable(f"{layer}: INT4 input axis of {codes.shape[-1]}, not a multiple of 8")
    yield f"{layer}.weight_packed", pack_int4_words(codes)
    yield f"{layer}.weight_scale", values["weight_scale"].float()
    yield f"{layer}.weight_shape", torch.tensor(codes.shape, dtype=torch.int64)


def recipe_problems(flat: Mapping[str, Any]) -> list[Diagnostic]:
    """What this layout refuses in a recipe before calibration: AWQ's input scales."""
    algorithm = flat.get("quantize", {}).get("algorithm")
    method = algorithm.get("method") if isinstance(algorithm, dict) else algorithm
    if method not in AWQ_METHODS:
        return []
    return [
        unsupported(
            f"{method} gives INT4 layers not preceded by a normalization (o_proj, down_proj) "
            f"their own input scale, and {NO_PRE_QUANT_SCALE}",
            "/quantize/algorithm",
            hint="export AWQ with --export-format modelopt, or use a recipe without AWQ "
            "(general/ptq/int4_blockwise_weight_only) for compressed-tensors",
        )
    ]


def problems(plan: ExportPlan) -> list[Diagnostic]:
    """What this layout refuses beyond its schemes: NVFP4 blocks other than 16 values."""
    odd = [
        name
        for name, s in plan.schemes().items()
        if s.weight == "nvfp4" and s.group_size != NVFP4_GROUP
    ]
    if not odd:
        return []
    shown = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
    return [unsupported(f"NVFP4 blocks of other than {NVFP4_GROUP} values ({shown})", "")]


# -- quantization_config ------------------------------------------------------------------------


def _args(num_bits: int, strategy: str, dynamic: bool | str, group: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {
        "num_bits": num_bits,
        "type": "float",
        "symmetric": True,
        "group_size": group,
        "strategy": strategy,
        "dynamic": dynamic,
    }
    if num_bits == 4:
        args["scale_dtype"] = "torch.float8_e4m3fn"
    return args


def scheme_group(scheme: Scheme, targets: list[str]) -> dict[str, Any]:
    """One ``config_groups`` entry."""
    inputs: dict[str, Any] | None
    if scheme.weight == "int4":
        weights = {
            "num_bits": 4,
            "type": "int",
            "symmetric": True,
            "group_size": scheme.group_size,
            "strategy": "group",
            "dynamic": False,
            "scale_dtype": "torch.float32",
        }
        inputs = None
    elif scheme.weight == "fp8":
        weights = _args(8, "tensor", False, None)
        inputs = _args(8, "tensor", False, None)
    else:
        weights = _args(4, "tensor_group", False, NVFP4_GROUP)
        inputs = _args(4, "tensor_group", "local", NVFP4_GROUP) if scheme.activation else None
    return {
        "targets": targets,
        "weights": weights,
        "input_activations": inputs,
        "output_activations": None,
        "format": FORMATS[scheme.algo],
    }


def quantization_config(plan: ExportPlan, present: set[str]) -> dict[str, Any]:
    """``quantization_config`` for ``config.json``."""
    layers = plan.schemes()
    by_scheme: dict[Scheme, list[str]] = {}
    for name, scheme in layers.items():
        by_scheme.setdefault(scheme, []).append(name)
    if len(by_scheme) == 1:
        scheme = next(iter(by_scheme))
        groups = {"group_0": scheme_group(scheme, ["Linear"])}
    else:
        groups = {
            f"group_{number}": scheme_group(scheme, sorted(names))
            for number, (scheme, names) in enumerate(by_scheme.items())
        }
    formats = {FORMATS[scheme.algo] for scheme in by_scheme}
    ignore = [entry.name for entry in plan.layers if entry.scheme is None]
    ignore += [router for router in plan.routers if router in present]
    kv = plan.kv_format
    return {
        "config_groups": groups,
        "format": formats.pop() if len(formats) == 1 else "mixed-precision",
        "global_compression_ratio": None,
        "ignore": sorted(ignore),
        "kv_cache_scheme": _args(8, "tensor", False, None) if kv == "fp8" else None,
        "quant_method": METHOD,
        "quantization_status": "compressed",
        "version": PACKAGE_VERSION,
    }


# -- reading a checkpoint back --------------------------------------------------------------------


def _read_int4(layer: str, tensors: dict[str, Tensor]) -> PackedLayer:
    """A pack-quantized layer, its codes repacked two per byte along the output axis."""
    scale = tensors[f"{layer}.weight_scale"]
    shape = tuple(int(size) for size in tensors[f"{layer}.weight_shape"].tolist())
    words = tensors[f"{layer}.weight_packed"]
    stored = (*words.shape[:-1], words.shape[-1] * 8)
    if stored != shape or shape[-2] % 2 or shape[-1] % scale.shape[-1]:
        raise ValueError(
            f"{layer}: INT4 codes of shape {stored} with weight_shape {shape} "
            f"and scales of shape {tuple(scale.shape)}"
        )
    group = shape[-1] // scale.shape[-1]
    values = {"weight": int4_words_to_rows(words), "weight_scale": scale.float()}
    return PackedLayer(Scheme("W4A16_AWQ", "int4", None, group), values)


def read(tensors: dict[str, Tensor], quantization: dict[str, Any]) -> CheckpointLayout:
    """The layout of a checkpoint in this format, by ModelOpt's tensor names."""
    layout = CheckpointLayout()
    used: set[str] = set()
    for name in list(tensors):
        if name.endswith(".weight_packed") and tensors[name].dtype == torch.int32:
            layer = name.removesuffix(".weight_packed")
            layout.layers[layer] = _read_int4(layer, tensors)
            used.update({name, f"{layer}.weight_scale", f"{layer}.weight_shape"})
            del tensors[name]  # repacked: the words are freed as each layer is read
        elif name.endswith(".weight_packed"):
            layer = name.removesuffix(".weight_packed")
            values = {
                "weight": tensors[name],
                "weight_scale": tensors[f"{layer}.weight_scale"],
                "weight_scale_2": torch.reciprocal(
                    tensors[f"{layer}.weight_global_scale"].float()
                ).reshape(()),
            }
            used.update({name, f"{layer}.weight_scale", f"{layer}.weight_global_scale"})
            activation: ActivationKind | None = None
            if f"{layer}.input_global_scale" in tensors:
                values["input_scale"] = torch.reciprocal(
                    tensors[f"{layer}.input_global_scale"].float()
                ).reshape(())
                used.add(f"{layer}.input_global_scale")
                activation = "nvfp4"
            group = values["weight"].shape[-1] * 2 // values["weight_scale"].shape[-1]
            algo = "NVFP4" if activation else "W4A16_NVFP4"
            layout.layers[layer] = PackedLayer(Scheme(algo, "nvfp4", activation, group), values)
        elif name.endswith(".weight") and tensors[name].dtype == torch.float8_e4m3fn:
            layer = name.removesuffix(".weight")
            values = {
                "weight": tensors[name],
                "weight_scale": tensors[f"{layer}.weight_scale"].float().reshape(()),
            }
            used.update({name, f"{layer}.weight_scale"})
            fp8: ActivationKind | None = None
            if f"{layer}.input_scale" in tensors:
                values["input_scale"] = tensors[f"{layer}.input_scale"].float().reshape(())
                used.add(f"{layer}.input_scale")
                fp8 = "fp8"
            layout.layers[layer] = PackedLayer(Scheme("FP8", "fp8", fp8), values)
    kind: ActivationKind = "fp8"
    for name in tensors:
        if name.endswith(".k_scale"):
            attention = name.removesuffix(".k_scale")
            value_name = f"{attention}.v_scale"
            layout.kv[attention] = (
                kind,
                tensors[name].float().reshape(()),
                tensors[value_name].float().reshape(()),
            )
            used.update((name, value_name))
    layout.plain = {name: tensor for name, tensor in tensors.items() if name not in used}
    return layout
