"""The Hugging Face checkpoint layout of ModelOpt's exporter (``--export-format modelopt``).

What vLLM, SGLang and TensorRT-LLM read from checkpoints that ModelOpt 0.47's
``export_hf_checkpoint`` writes:

* tensors under the layer's name: ``weight`` (FP8 codes, or uint8 with two 4-bit codes per
  byte), ``weight_scale``, ``weight_scale_2``, ``input_scale``, ``pre_quant_scale``; the KV
  cache's ``<attention>.k_proj.k_scale`` and ``<attention>.v_proj.v_scale``;
* ``hf_quant_config.json``: ``quant_algo`` (one scheme for every quantized layer, or
  ``MIXED_PRECISION`` with ``quantized_layers``), ``kv_cache_quant_algo``, ``group_size`` and
  the AWQ flags, ``exclude_modules``;
* ``quantization_config`` in ``config.json`` (``quant_method: modelopt``), the same content
  in the shape llm-compressor's configs have.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from ... import __version__
from .collect import Item, KVScales, Packed, Plain
from .layout import CheckpointLayout, PackedLayer
from .schemes import ActivationKind, Scheme
from .survey import ExportPlan

NAME = "modelopt"
KV_ALGOS = {"fp8": "FP8", "nvfp4": "NVFP4"}


def tensors(items: Iterable[Item]) -> Iterator[tuple[str, Tensor]]:
    """The checkpoint's tensors by name."""
    for item in items:
        if isinstance(item, Plain):
            yield item.name, item.tensor
        elif isinstance(item, Packed):
            for suffix, tensor in item.tensors.items():
                yield f"{item.layer}.{suffix}", tensor
        else:
            yield from kv_tensors(item)


def kv_tensors(item: KVScales) -> Iterator[tuple[str, Tensor]]:
    yield f"{item.attention}.k_proj.k_scale", item.k_scale
    yield f"{item.attention}.v_proj.v_scale", item.v_scale


def quantized_layers(plan: ExportPlan) -> dict[str, Scheme]:
    """Scheme by the module name ModelOpt's config uses (fused experts: the experts module)."""
    found: dict[str, Scheme] = {}
    for entry in plan.layers:
        if entry.scheme is not None:
            found[entry.name] = entry.scheme
    for experts in plan.experts:
        schemes = [s for s in experts.schemes.values() if s is not None]
        if schemes:
            found[experts.name] = schemes[0]
    return found


def excluded_layers(plan: ExportPlan, present: set[str]) -> list[str]:
    """Layers that carry quantizers but stay unquantized, and the routers of MoE blocks."""
    names = [entry.name for entry in plan.layers if entry.scheme is None]
    names += [router for router in plan.routers if router in present]
    return names


def hf_quant_config(plan: ExportPlan, present_modules: set[str]) -> dict[str, Any]:
    """The content of ``hf_quant_config.json``."""
    layers = quantized_layers(plan)
    configs = {name: scheme.layer_config() for name, scheme in layers.items()}
    distinct = {tuple(sorted(c.items())) for c in configs.values()}
    quantization: dict[str, Any] = {"quant_algo": None, "kv_cache_quant_algo": None}
    if len(distinct) > 1:
        quantization["quant_algo"] = "MIXED_PRECISION"
        quantization["quantized_layers"] = configs
    elif configs:
        quantization.update(next(iter(configs.values())))
        quantization["exclude_modules"] = summarize_exclusions(
            excluded_layers(plan, present_modules), list(configs)
        )
    kv = plan.kv_format
    if kv is not None:
        quantization["kv_cache_quant_algo"] = KV_ALGOS[kv]
    return {"producer": {"name": "qrecipe", "version": __version__}, "quantization": quantization}


def summarize_exclusions(excluded: list[str], quantized: list[str]) -> list[str]:
    """Excluded module names, shortened to ``prefix*`` or ``prefix.*`` patterns where safe.

    A pattern is safe when it matches no quantized layer. For each excluded name the first
    safe candidate is taken, from the shortest prefix (cut at a dot) to the name itself; the
    pair ``{prefix, prefix.*}`` is written as ``prefix.*``. This is the rule ModelOpt's
    exporter follows, so both write the same list.
    """
    forbidden: set[str] = set()
    for name in quantized:
        forbidden.add(name)
        forbidden.update(name[:i] + "*" for i in range(len(name) + 1))
    chosen: set[str] = set()
    for name in excluded:
        for candidate in _candidates(name):
            if any(pattern in forbidden for pattern in candidate):
                continue
            if not all(pattern in chosen for pattern in candidate):
                if len(candidate) == 2 and candidate[1] == candidate[0] + ".*":
                    chosen.add(candidate[1])
                else:
                    chosen.update(candidate)
            break
    return sorted(chosen)


def _candidates(name: str) -> Iterator[list[str]]:
    for index, char in enumerate(name):
        if char == ".":
            yield [name[:index] + "*"]
            yield [name[:index], name[:index] + ".*"]
    yield [name]


# -- quantization_config in config.json ---------------------------------------------------------

_FP8 = {"dynamic": False, "num_bits": 8, "type": "float"}


def _group(scheme_algo: str, group_size: int | None) -> dict[str, Any]:
    """One ``config_groups`` entry for a layer scheme."""
    fp4 = {"dynamic": False, "num_bits": 4, "type": "float"}
    if scheme_algo == "FP8":
        return {"input_activations": dict(_FP8), "weights": dict(_FP8)}
    if scheme_algo == "NVFP4":
        size = group_size or 16
        return {
            "input_activations": {**fp4, "group_size": size},
            "weights": {**fp4, "group_size": size},
        }
    if scheme_algo == "W4A16_NVFP4":
        return {"weights": {**fp4, "group_size": group_size or 16}}
    if scheme_algo == "W4A16_AWQ":
        return {
            "weights": {"dynamic": False, "num_bits": 4, "type": "int", "group_size": group_size}
        }
    # W4A8_AWQ
    size = group_size or 128
    return {
        "input_activations": {**_FP8, "group_size": size},
        "weights": {**fp4, "group_size": size},
    }


def quantization_config(hf_config: dict[str, Any]) -> dict[str, Any]:
    """``quantization_config`` for ``config.json`` from the content of ``hf_quant_config.json``."""
    details = hf_config["quantization"]
    algo = details.get("quant_algo")
    config: dict[str, Any] = {}
    if algo == "MIXED_PRECISION":
        layers: dict[str, list[str]] = {}
        keys: dict[str, dict[str, Any]] = {}
        for name, layer in details["quantized_layers"].items():
            key = repr(sorted(layer.items()))
            keys[key] = layer
            layers.setdefault(key, []).append(name)
        groups = {}
        for number, (key, names) in enumerate(layers.items()):
            layer = keys[key]
            group = _group(layer["quant_algo"], layer.get("group_size"))
            group["targets"] = sorted(names)
            groups[f"group_{number}"] = group
        config["config_groups"] = groups
        config["quantized_layers"] = details["quantized_layers"]
    elif algo in ("FP8", "NVFP4", "W4A16_NVFP4"):
        group = _group(algo, details.get("group_size"))
        group["targets"] = ["Linear"]
        config["config_groups"] = {"group_0": group}
    config["ignore"] = details.get("exclude_modules") or []
    if algo:
        config["quant_algo"] = algo
    kv = details.get("kv_cache_quant_algo")
    if kv == "FP8":
        config["kv_cache_scheme"] = dict(_FP8)
    elif kv:
        config["kv_cache_scheme"] = kv
    config["producer"] = hf_config["producer"]
    config["quant_method"] = "modelopt"
    return config


# -- reading a checkpoint back ------------------------------------------------------------------

LAYER_TENSORS = ("weight", "weight_scale", "weight_scale_2", "input_scale", "pre_quant_scale")
KV_SUFFIXES = (".k_proj.k_scale", ".v_proj.v_scale")


def read_scheme(tensors: dict[str, Tensor]) -> Scheme:
    """A packed layer's scheme, from the dtypes and shapes of its tensors."""
    weight, scale = tensors["weight"], tensors["weight_scale"]
    activation = "input_scale" in tensors
    if weight.dtype == torch.float8_e4m3fn:
        return Scheme("FP8", "fp8", "fp8" if activation else None)
    if weight.dtype != torch.uint8 or scale.dim() == 0:
        raise ValueError(
            f"weight of dtype {weight.dtype} with a scale of shape {tuple(scale.shape)}"
        )
    if scale.dtype == torch.float8_e4m3fn:
        group = weight.shape[-1] * 2 // scale.shape[-1]
        if activation:
            return Scheme("NVFP4", "nvfp4", "nvfp4", group)
        return Scheme("W4A16_NVFP4", "nvfp4", None, group)
    group = weight.shape[-1] // scale.shape[-1]
    if "weight_scale_2" in tensors:
        return Scheme("W4A8_AWQ", "int4_fp8", "fp8", group)
    return Scheme("W4A16_AWQ", "int4", None, group)


def read(tensors: dict[str, Tensor], quantization: dict[str, Any]) -> CheckpointLayout:
    """The layout of a checkpoint in this format (``quantization``: its quantization_config)."""
    layout = CheckpointLayout()
    layers = [
        name.removesuffix(".weight_scale") for name in tensors if name.endswith(".weight_scale")
    ]
    used: set[str] = set()
    for layer in layers:
        found = {s: tensors[f"{layer}.{s}"] for s in LAYER_TENSORS if f"{layer}.{s}" in tensors}
        try:
            layout.layers[layer] = PackedLayer(read_scheme(found), found)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{layer}: not a layer this format describes ({exc})") from None
        used.update(f"{layer}.{s}" for s in found)
    kv_algo = str(quantization.get("kv_cache_quant_algo") or _kv_from_scheme(quantization))
    kind: ActivationKind = "nvfp4" if kv_algo.upper() == "NVFP4" else "fp8"
    for name in tensors:
        if name.endswith(KV_SUFFIXES[0]):
            attention = name.removesuffix(KV_SUFFIXES[0])
            value_name = attention + KV_SUFFIXES[1]
            layout.kv[attention] = (kind, tensors[name], tensors[value_name])
            used.update((name, value_name))
    layout.plain = {name: tensor for name, tensor in tensors.items() if name not in used}
    return layout


def _kv_from_scheme(quantization: dict[str, Any]) -> str:
    scheme = quantization.get("kv_cache_scheme")
    return "FP8" if isinstance(scheme, dict) else str(scheme or "FP8")
