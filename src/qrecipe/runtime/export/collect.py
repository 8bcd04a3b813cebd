"""A quantized model's checkpoint content, in model order, before any format names it.

:func:`collect` walks the model's state dict once and yields three kinds of items: tensors kept
as they are (:class:`Plain`), quantized linear layers with their packed tensors
(:class:`Packed`, by ModelOpt's tensor names) and attention modules' KV-cache scales
(:class:`KVScales`). Quantizer state never appears. Fused experts become one layer per expert
and projection, as in the checkpoints the models are published with
(``experts.<i>.gate_proj``, ``experts.<i>.up_proj``, ``experts.<i>.down_proj``); tied
weights are written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import Tensor, nn

from ..placement import iter_quantizers
from ..placement.base import quantizer_at
from ..quantizer import AnyQuantizer, SequentialQuantizer, TensorQuantizer
from .schemes import ActivationKind, Scheme, Unexportable
from .survey import ExpertsEntry, ExportPlan
from .tensors import kv_scale, pack_layer

# Names of the halves of a fused gate/up projection, in the order the experts store them.
GATE_UP_HALVES = ("gate_proj", "up_proj")
# Packed tensors with one row per output feature; split when a fused projection is.
ROW_TENSORS = ("weight", "weight_scale")


@dataclass
class Plain:
    name: str
    tensor: Tensor


@dataclass
class Packed:
    layer: str
    scheme: Scheme
    tensors: dict[str, Tensor]


@dataclass
class KVScales:
    attention: str
    kind: ActivationKind
    k_scale: Tensor
    v_scale: Tensor


Item = Plain | Packed | KVScales


def collect(model: nn.Module, plan: ExportPlan) -> Iterator[Item]:
    """Every item of the checkpoint, in state-dict order."""
    quantizer_prefixes = tuple(f"{name}." for name, _ in iter_quantizers(model))
    layers = {f"{e.name}.weight": e for e in plan.layers if e.scheme is not None}
    experts = {
        f"{entry.name}.{tensor}": (entry, tensor)
        for entry in plan.experts
        for tensor in entry.schemes
    }
    pending_kv = dict(plan.kv)
    seen_storage: set[tuple[int, tuple[int, ...]]] = set()
    for key, value in model.state_dict(keep_vars=True).items():
        if key.startswith(quantizer_prefixes):
            # The KV-cache scales go where the attention module's quantizer state was.
            owner = key.split(".k_bmm_quantizer.")[0] if ".k_bmm_quantizer." in key else None
            if owner in pending_kv:
                yield _kv_item(model, owner, pending_kv.pop(owner))
            continue
        tensor = value.detach()
        if key in layers:
            entry = layers[key]
            assert entry.scheme is not None
            module = entry.module
            yield Packed(
                entry.name,
                entry.scheme,
                pack_layer(
                    tensor,
                    quantizer_at(module, "weight_quantizer"),
                    optional_quantizer(module, "input_quantizer"),
                    entry.scheme,
                ),
            )
        elif key in experts:
            yield from _expert_items(*experts[key], tensor)
        else:
            identity = (tensor.untyped_storage().data_ptr(), tuple(tensor.shape))
            if tensor.numel() and identity in seen_storage:
                continue  # a tied weight: written once, under its first name
            seen_storage.add(identity)
            yield Plain(key, tensor)
    for attention, kind in pending_kv.items():
        yield _kv_item(model, attention, kind)


def optional_quantizer(module: nn.Module, attr: str) -> AnyQuantizer | None:
    """The quantizer ``attr`` of ``module``, or None when it has none."""
    child = module._modules.get(attr)
    return child if isinstance(child, (TensorQuantizer, SequentialQuantizer)) else None


def _kv_item(model: nn.Module, attention: str, kind: ActivationKind) -> KVScales:
    module = model.get_submodule(attention)
    return KVScales(
        attention,
        kind,
        kv_scale(quantizer_at(module, "k_bmm_quantizer")),
        kv_scale(quantizer_at(module, "v_bmm_quantizer")),
    )


def _expert_items(entry: ExpertsEntry, tensor_name: str, weight: Tensor) -> Iterator[Item]:
    """One layer per expert (and half of a gate/up projection), packed or plain."""
    module = entry.module
    scheme = entry.schemes[tensor_name]
    halves = GATE_UP_HALVES if tensor_name == "gate_up_proj" else (tensor_name,)
    if tensor_name == "gate_up_proj" and weight.shape[-2] % 2:
        raise Unexportable(f"{entry.name}.gate_up_proj has an odd number of rows")
    quantizers = module._modules.get(f"{tensor_name}_weight_quantizers")
    input_quantizer = optional_quantizer(module, f"{tensor_name}_input_quantizer")
    for index in range(weight.shape[0]):
        piece = weight[index]
        if scheme is None or quantizers is None:
            for half, rows in zip(halves, piece.chunk(len(halves), dim=-2), strict=True):
                yield Plain(f"{entry.name}.{index}.{half}.weight", rows.contiguous())
            continue
        tensors = pack_layer(
            piece,
            quantizer_at(quantizers, str(index)),
            input_quantizer,
            scheme,
        )
        for number, half in enumerate(halves):
            part = {
                name: (
                    value.chunk(len(halves), dim=0)[number]
                    if name in ROW_TENSORS and value.dim() > 0
                    else value
                )
                for name, value in tensors.items()
            }
            yield Packed(f"{entry.name}.{index}.{half}", scheme, part)


__all__ = ["GATE_UP_HALVES", "Item", "KVScales", "Packed", "Plain", "collect", "optional_quantizer"]
