"""What one layer becomes in a checkpoint: its scheme, read from quantizer attributes alone.

A :class:`Scheme` names the checkpoint layout of a quantized linear layer, as ModelOpt's
exporter calls it (``quant_algo``): which weight codes and scales it stores and whether it
carries a static input scale. :func:`classify_layer` turns the attributes of a layer's weight,
input and output quantizers into one, or says in a sentence why no checkpoint layout expresses
them; :func:`classify_kv` does the same for the key/value (KV cache) quantizers. Only
attributes are read, so the answer is known from a recipe's plan, before any calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..kernels import QuantFormat, UnsupportedFormatError
from ..kernels.table import E4M3

Attributes = dict[str, Any] | list[dict[str, Any]]
WeightKind = Literal["fp8", "nvfp4", "int4", "int4_fp8"]
ActivationKind = Literal["fp8", "nvfp4"]


class Unexportable(ValueError):
    """A layer's quantizers have no checkpoint layout; the message says why."""


@dataclass(frozen=True)
class Scheme:
    """The checkpoint layout of one quantized linear layer."""

    algo: str
    """ModelOpt's ``quant_algo``: ``FP8``, ``NVFP4``, ``W4A16_NVFP4``, ``W4A16_AWQ``, ..."""
    weight: WeightKind
    activation: ActivationKind | None
    group_size: int = 0
    """Block length of the weight's scales (0: one scale per tensor)."""

    def layer_config(self) -> dict[str, Any]:
        """The per-layer entry of ``hf_quant_config.json``, as ModelOpt writes it."""
        config: dict[str, Any] = {"quant_algo": self.algo}
        if self.weight in ("int4", "int4_fp8"):
            config.update(group_size=self.group_size, has_zero_point=False, pre_quant_scale=True)
        elif self.group_size:
            config["group_size"] = self.group_size
        return config


SCHEMES = ("FP8", "NVFP4", "W4A16_NVFP4", "W4A16_AWQ", "W4A8_AWQ")
"""Every layer scheme the exporters write."""

SUPPORTED = (
    "FP8 (E4M3 per-tensor weights and static per-tensor inputs), NVFP4 (E2M1 blocks with "
    "dynamic E4M3 block scales; inputs NVFP4 or unquantized), INT4 weights in static blocks "
    "along the input axis with unquantized inputs (W4A16_AWQ) or followed by FP8 per-tensor "
    "weights and FP8 inputs (W4A8_AWQ); KV cache FP8 or NVFP4"
)


def enabled_stages(attributes: Attributes | None) -> list[dict[str, Any]]:
    """The enabled attribute objects of a quantizer (a list for sequences)."""
    if attributes is None:
        return []
    stages = attributes if isinstance(attributes, list) else [attributes]
    return [stage for stage in stages if stage.get("enable", True)]


def _format(stage: dict[str, Any]) -> QuantFormat:
    try:
        return QuantFormat.from_cfg(stage)
    except UnsupportedFormatError as exc:
        raise Unexportable(exc.problem) from None


def _describe(stages: list[dict[str, Any]]) -> str:
    names = []
    for stage in stages:
        try:
            names.append(QuantFormat.from_cfg(stage).describe())
        except UnsupportedFormatError:
            names.append("an unsupported format")
    return " -> ".join(names)


def _is_fp8_per_tensor(fmt: QuantFormat) -> bool:
    element = fmt.element
    return (
        element.kind == "float"
        and (element.exponent_bits, element.mantissa_bits) == E4M3.key
        and fmt.scheme == "tensor"
        and not fmt.dynamic
    )


def _is_dynamic_nvfp4(fmt: QuantFormat) -> bool:
    return fmt.scheme == "nvfp4" and fmt.dynamic_blocks and not fmt.dynamic


def _int4_group(fmt: QuantFormat) -> int | None:
    """The block length of signed INT4 codes in static blocks along the last axis, or None."""
    element = fmt.element
    if element.kind != "int" or element.bits != 4 or element.unsigned or element.narrow_range:
        return None
    if fmt.scheme != "block" or fmt.dynamic or [axis for axis, _ in fmt.block_sizes] != [-1]:
        return None
    return fmt.block_size


def _activation(stages: list[dict[str, Any]]) -> ActivationKind | None:
    """The input quantizer's kind (None when disabled), or Unexportable."""
    if not stages:
        return None
    if len(stages) == 1:
        fmt = _format(stages[0])
        if _is_fp8_per_tensor(fmt):
            return "fp8"
        if _is_dynamic_nvfp4(fmt):
            return "nvfp4"
    raise Unexportable(f"input quantizer {_describe(stages)} has no checkpoint layout")


def classify_layer(
    weight: Attributes | None, input: Attributes | None, output: Attributes | None = None
) -> Scheme | None:
    """The scheme of a linear layer with these quantizers; None when it is not quantized.

    Raises :class:`Unexportable` when the combination has no checkpoint layout.
    """
    weights, inputs = enabled_stages(weight), enabled_stages(input)
    if enabled_stages(output):
        raise Unexportable(
            f"output quantizer {_describe(enabled_stages(output))} (checkpoints store weight "
            "and input scales only)"
        )
    if not weights:
        if inputs:
            raise Unexportable(
                f"input quantizer {_describe(inputs)} without a weight quantizer (checkpoint "
                "layouts quantize weights; activation-only quantization has none)"
            )
        return None
    formats = [_format(stage) for stage in weights]
    first = formats[0]
    candidates: dict[ActivationKind | None, Scheme]
    if len(formats) == 1 and _is_fp8_per_tensor(first):
        candidates = {"fp8": Scheme("FP8", "fp8", "fp8")}
    elif len(formats) == 1 and _is_dynamic_nvfp4(first):
        size = first.block_size
        candidates = {
            "nvfp4": Scheme("NVFP4", "nvfp4", "nvfp4", size),
            None: Scheme("W4A16_NVFP4", "nvfp4", None, size),
        }
    elif len(formats) == 1 and _int4_group(first):
        candidates = {None: Scheme("W4A16_AWQ", "int4", None, _int4_group(first) or 0)}
    elif len(formats) == 2 and _int4_group(first) and _is_fp8_per_tensor(formats[1]):
        candidates = {"fp8": Scheme("W4A8_AWQ", "int4_fp8", "fp8", _int4_group(first) or 0)}
    else:
        raise Unexportable(f"weight quantizer {_describe(weights)} has no checkpoint layout")
    activation = _activation(inputs)
    if activation in candidates:
        return candidates[activation]
    shown = "unquantized inputs" if activation is None else f"input quantizer {_describe(inputs)}"
    raise Unexportable(f"weight quantizer {_describe(weights)} with {shown}")


def classify_kv(key: Attributes | None, value: Attributes | None) -> ActivationKind | None:
    """The KV-cache scheme of an attention module's key and value quantizers (None: none)."""
    keys, values = enabled_stages(key), enabled_stages(value)
    if not keys and not values:
        return None
    if not keys or not values:
        raise Unexportable(
            "key and value quantizers must be enabled together (checkpoints hold both "
            "k_scale and v_scale)"
        )
    kinds = set()
    for stages in (keys, values):
        fmt = _format(stages[0]) if len(stages) == 1 else None
        if fmt is not None and _is_fp8_per_tensor(fmt):
            kinds.add("fp8")
        elif fmt is not None and _is_dynamic_nvfp4(fmt):
            kinds.add("nvfp4")
        else:
            raise Unexportable(f"KV-cache quantizer {_describe(stages)} has no checkpoint layout")
    if len(kinds) > 1:
        raise Unexportable("key and value quantizers of different formats")
    kind: ActivationKind = "fp8" if kinds == {"fp8"} else "nvfp4"
    return kind
