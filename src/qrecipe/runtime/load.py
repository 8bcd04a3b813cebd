"""``load(directory)``: an exported checkpoint back as a model that computes from packed weights.

Loading is a pipeline beside :mod:`.apply`, of named steps:

1. **build**: the model class of ``config.json`` as a skeleton whose parameters take no
   memory (on the meta device; buffers such as rotary tables are computed as usual), so that
   loading never holds a full-precision copy of a quantized weight: the checkpoint's tensors
   become the model's, and weight memory stays at the packed size;
2. **read**: ``config.json`` and its ``quantization_config`` say the format; the tensors'
   names are mapped to the model's (:mod:`.export.names`) and the format's module turns them
   into a :class:`~.export.layout.CheckpointLayout`;
3. **recipe**: the checkpoint's own flat recipe (``recipe.flat.json``), or, for checkpoints
   other tools wrote, one derived from the layout (each quantized layer's input quantizer,
   the KV cache);
4. **plan** and **place** as :func:`~.apply.apply` does (weight quantizers off: the weights
   arrive quantized);
5. **restore** instead of calibrating: unquantized tensors into their parameters, packed
   weights attached (:mod:`.packed`: dequantized for each forward call), every activation
   quantizer's amax.

Checkpoints this package wrote carry each calibrated per-tensor amax
(:mod:`.export.amax`): activation quantizers get it exactly, and FP8 weights dequantize with
fake quantization's own multiplier, so the model computes what the fake-quantized model did.
Other checkpoints compute what a serving engine computes from them: weights as
``code x scale``, each activation amax from its stored scale (``input_scale`` x 448 for FP8,
x 6 x 448 for NVFP4; ``k_scale``/``v_scale`` x 448).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..language import CHECKPOINT_RECIPE, load_flat
from .apply import configure, plan_and_check
from .export import compressed_tensors, modelopt
from .export.amax import fake_quant_inverse, read_amax
from .export.layout import CheckpointLayout, PackedLayer
from .export.names import checkpoint_names
from .export.reader import ShardError, iter_tensors
from .export.schemes import ActivationKind
from .flatbuild import FP8, NVFP4, disable, entry, make_flat
from .kernels.table import E4M3_MAX, NVFP4_GLOBAL_DIVISOR
from .matching import RecipePlan
from .packed import PackedKind, PackedWeight, attach
from .placement.experts import SECOND_PROJECTION, fused_experts_first_projection
from .quantizer import AnyQuantizer, iter_stages

READERS = {
    modelopt.NAME: modelopt.read,
    compressed_tensors.METHOD: compressed_tensors.read,
}
"""Checkpoint readers by the ``quant_method`` of ``quantization_config``."""

_EXPERT_LAYER = re.compile(
    r"^(?P<experts>.+)\.(?P<index>\d+)\.(?P<half>gate_proj|up_proj|down_proj)$"
)


class CheckpointError(ValueError):
    """A directory that is not a checkpoint this runtime loads; the message says why."""


def load(
    directory: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    backend: str = "auto",
) -> nn.Module:
    """The model of a quantized checkpoint, computing from its packed weights.

    ``directory``: a checkpoint written by :func:`qrecipe.runtime.export.export` (either
    format) or by ModelOpt's ``export_hf_checkpoint``. ``dtype``: the compute dtype (default:
    the checkpoint's). ``backend``: dequantization kernels, ``"triton"``, ``"torch"`` or
    ``"auto"`` (Triton for CUDA tensors). Needs ``transformers`` to build the model.
    """
    path = Path(directory)
    quantization = read_config(path)
    method = quantization.get("quant_method")
    if method not in READERS:
        raise CheckpointError(
            f"{path / 'config.json'}: quantization_config.quant_method {method!r} is not one of "
            f"{', '.join(READERS)}"
        )
    model = build_model(path, dtype)
    names = checkpoint_names(model)
    # The published checkpoint's names, as the model in memory spells them (see export.names).
    tensors = {names.to_model(name): tensor for name, tensor in read_tensors(path).items()}
    layout = READERS[method](tensors, _quantization_details(path, quantization))
    del tensors
    ours = (path / CHECKPOINT_RECIPE).is_file()
    flat = load_flat(path) if ours else derive_recipe(layout)
    amax = _read_amax(path) if ours else {}
    use_fake_quant_scales(layout, amax)
    compute_dtype = next(model.parameters()).dtype
    recipe_plan = plan_and_check(model, flat)
    weights_arrive_quantized(recipe_plan)
    quantizers = configure(recipe_plan, backend)
    restore(model, layout, compute_dtype, backend)
    restore_amax(recipe_plan, quantizers, layout, amax)
    return model.to(device).eval()


def _read_amax(path: Path) -> dict[str, list[Tensor | None]]:
    try:
        return read_amax(path)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


def use_fake_quant_scales(
    layout: CheckpointLayout, amax: Mapping[str, list[Tensor | None]]
) -> None:
    """FP8 weights dequantized with fake quantization's multiplier where the amax is known.

    The codes are the checkpoint's; ``1 / (448 * (1 / amax))`` replaces ``amax / 448``, so
    the weights are the fake-quantized model's (see :mod:`.export.amax`).
    """
    for name, layer in layout.layers.items():
        if layer.scheme.weight != "fp8":
            continue
        for quantizer in _weight_quantizer_names(name):
            values = amax.get(quantizer)
            if values and values[0] is not None:
                layer.tensors["weight_scale"] = fake_quant_inverse(values[0], E4M3_MAX)
                break


def _weight_quantizer_names(layer: str) -> list[str]:
    """The names the weight quantizer of a checkpoint layer has in the model."""
    match = _EXPERT_LAYER.match(layer)
    if match is None:
        return [f"{layer}.weight_quantizer"]
    fused = ("down_proj",) if match["half"] == "down_proj" else ("gate_up_proj", "up_proj")
    return [f"{match['experts']}.{tensor}_weight_quantizers.{match['index']}" for tensor in fused]


def read_config(path: Path) -> dict[str, Any]:
    """The ``quantization_config`` of ``config.json``."""
    try:
        config = json.loads((path / "config.json").read_text())
    except OSError as exc:
        raise CheckpointError(f"{path}: no readable config.json ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path / 'config.json'}:{exc.lineno}:{exc.colno}: {exc.msg}"
        ) from None
    quantization = config.get("quantization_config")
    if not isinstance(quantization, dict):
        raise CheckpointError(f"{path / 'config.json'} has no quantization_config")
    return quantization


def _quantization_details(path: Path, quantization: dict[str, Any]) -> dict[str, Any]:
    """ModelOpt's ``hf_quant_config.json`` section when present (it names the KV format)."""
    hf_config = path / "hf_quant_config.json"
    if hf_config.is_file():
        details = json.loads(hf_config.read_text()).get("quantization")
        if isinstance(details, dict):
            return {**quantization, **details}
    return quantization


def read_tensors(path: Path) -> dict[str, Tensor]:
    """Every tensor of the checkpoint's safetensors files (one file, or an index and shards),
    each in memory of its own (see :mod:`.export.reader`)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise CheckpointError(f"{path}: no model.safetensors or model.safetensors.index.json")
    tensors: dict[str, Tensor] = {}
    try:
        for name in files:
            tensors.update(iter_tensors(path / name))
    except (OSError, ShardError) as exc:
        raise CheckpointError(str(exc)) from None
    return tensors


def derive_recipe(layout: CheckpointLayout) -> dict[str, Any]:
    """A flat recipe for a checkpoint that carries none: its input and KV quantizers.

    Fused experts are stored one layer per expert; their input quantizers are named after the
    fused projection (``<experts>.gate_up_proj_input_quantizer``), so both spellings get an
    entry (an entry that matches nothing is harmless).
    """
    entries = [disable("*")]
    for name, layer in layout.layers.items():
        kind = layer.scheme.activation
        if kind is None:
            continue
        attributes = _activation_attributes(kind, layer.scheme.group_size)
        entries.append(entry(f"{name}.input_quantizer", attributes))
        match = _EXPERT_LAYER.match(name)
        if match is not None:
            projection = "down_proj" if match["half"] == "down_proj" else "*up_proj"
            entries.append(entry(f"{match['experts']}.{projection}_input_quantizer", attributes))
    for attention, (kind, _, _) in layout.kv.items():
        entries.append(entry(f"{attention}.[kv]_bmm_quantizer", _activation_attributes(kind, 16)))
    return make_flat(entries, description="derived from the checkpoint's layout")


def _activation_attributes(kind: ActivationKind, group: int) -> dict[str, Any]:
    if kind == "fp8":
        return dict(FP8)
    attributes = dict(NVFP4)
    attributes["block_sizes"] = {**attributes["block_sizes"], "-1": group or 16}
    return attributes


def build_model(path: Path, dtype: torch.dtype | None) -> nn.Module:
    """The model class of ``config.json``, its parameters on the meta device (loaded next)."""
    try:
        import transformers
        from transformers.initialization import no_init_weights
    except ImportError as exc:  # pragma: no cover - needs an environment without transformers
        raise ImportError(
            "loading a checkpoint needs transformers: pip install transformers"
        ) from exc
    config = transformers.AutoConfig.from_pretrained(str(path))
    # The weights are packed by this loader, not by a transformers quantizer.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    architectures = getattr(config, "architectures", None) or []
    cls = getattr(transformers, architectures[0], None) if architectures else None
    if cls is None:
        raise CheckpointError(
            f"{path / 'config.json'}: architectures {architectures!r} names no transformers model"
        )
    chosen = dtype or _config_dtype(config)
    with no_init_weights(), parameters_on_meta():
        model: nn.Module = cls._from_config(config, dtype=chosen)
    on_meta = [name for name, buffer in model.named_buffers() if buffer.is_meta]
    if on_meta:
        raise CheckpointError(
            f"{type(model).__name__}: buffers {', '.join(on_meta[:3])} were created without "
            "values while building the skeleton; this model cannot be loaded here"
        )
    return model


class _EmptyOnMeta(TorchFunctionMode):
    """``torch.empty`` on the meta device: what parameters are allocated with."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.empty:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every parameter created inside on the meta device (no memory); buffers as usual.

    Parameters are allocated with ``torch.empty`` (put on the meta device directly) or built
    from small tensors such as a norm's ones (moved there when registered), so no
    full-precision weight is ever allocated. Buffers keep their values: rotary tables and
    the like are computed by the constructors, not loaded.
    """
    register = nn.Module.register_parameter

    def register_on_meta(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(self, name, param)

    # Patched on the class for the constructor's duration: modules register their parameters
    # through it from __setattr__, which no other hook reaches.
    nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        with _EmptyOnMeta():
            yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def _config_dtype(config: Any) -> torch.dtype:
    value = getattr(config, "dtype", None)
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and isinstance(getattr(torch, value, None), torch.dtype):
        found: torch.dtype = getattr(torch, value)
        return found
    return torch.float32


def weights_arrive_quantized(recipe_plan: RecipePlan) -> None:
    """Switch the planned weight quantizers off: the checkpoint's weights are quantized already."""
    for slot in recipe_plan.slots:
        if slot.role == "weight":
            for stage in recipe_plan.decisions[slot.name].stages:
                stage["enable"] = False


# -- restoring ----------------------------------------------------------------------------------


def restore(model: nn.Module, layout: CheckpointLayout, dtype: torch.dtype, backend: str) -> None:
    """Put every tensor of the layout into the model; refuse what does not fit."""
    layers = dict(layout.layers)
    plain = dict(layout.plain)
    loaded: set[int] = set()
    for name, module in list(model.named_modules()):
        first = fused_experts_first_projection(module)
        if first is not None:
            _restore_experts(name, module, first, layers, plain, dtype, backend, loaded)
    for name, layer in list(layers.items()):
        module = _submodule(model, name)
        current = module._parameters.get("weight")
        if current is None:
            raise CheckpointError(f"{name}: the model has no weight to load a packed layer into")
        packed = _packed(layer, dtype, backend)
        if packed.shape != tuple(current.shape):
            raise CheckpointError(
                f"{name}: packed weight of shape {packed.shape}, the model's is "
                f"{tuple(current.shape)}"
            )
        attach(module, {"weight": packed}, _smoothing(layer))
        loaded.add(id(packed))
        del layers[name]
    for name, tensor in plain.items():
        loaded.add(_set_tensor(model, name, tensor))
    _tie_and_check(model, loaded)


def _submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise CheckpointError(
            f"the checkpoint holds {name}, which the model does not have"
        ) from None


def _set_tensor(model: nn.Module, name: str, tensor: Tensor) -> int:
    owner, _, attr = name.rpartition(".")
    module = _submodule(model, owner) if owner else model
    current = module._parameters.get(attr, module._buffers.get(attr))
    if current is None:
        raise CheckpointError(f"the checkpoint holds {name}, which the model does not have")
    if tuple(current.shape) != tuple(tensor.shape):
        raise CheckpointError(
            f"{name}: the checkpoint's tensor has shape {tuple(tensor.shape)}, the model's "
            f"{tuple(current.shape)}"
        )
    value = tensor.to(current.dtype) if current.is_floating_point() else tensor
    if attr in module._parameters:
        parameter = nn.Parameter(value, requires_grad=False)
        module._parameters[attr] = parameter
        return id(parameter)
    module._buffers[attr] = value
    return id(value)


def _tie_and_check(model: nn.Module, loaded: set[int]) -> None:
    tie = getattr(model, "tie_weights", None)
    if callable(tie):
        tie()
    missing = [
        name
        for name, parameter in model.named_parameters(remove_duplicate=False)
        if id(parameter) not in loaded
    ]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise CheckpointError(f"the checkpoint lacks {shown}")


def _packed(layer: PackedLayer, dtype: torch.dtype, backend: str) -> PackedWeight:
    tensors, scheme = layer.tensors, layer.scheme
    kind: PackedKind = scheme.weight
    scale = tensors["weight_scale"]
    if kind == "fp8":
        scale = scale.float()
    scale_2 = tensors.get("weight_scale_2")
    return PackedWeight(kind, tensors["weight"], scale, scale_2, dtype=dtype, backend=backend)


def _smoothing(layer: PackedLayer) -> Tensor | None:
    return layer.tensors.get("pre_quant_scale")


def _restore_experts(
    name: str,
    module: nn.Module,
    first: str,
    layers: dict[str, PackedLayer],
    plain: dict[str, Tensor],
    dtype: torch.dtype,
    backend: str,
    loaded: set[int],
) -> None:
    """Stack the per-expert layers of the checkpoint into the fused parameters."""
    second = module._parameters[SECOND_PROJECTION]
    assert second is not None
    count = int(second.shape[0])
    halves = {first: ("gate_proj", "up_proj") if first == "gate_up_proj" else ("up_proj",)}
    halves[SECOND_PROJECTION] = (SECOND_PROJECTION,)
    packed: dict[str, PackedWeight] = {}
    for tensor, parts in halves.items():
        names = [[f"{name}.{i}.{part}" for part in parts] for i in range(count)]
        if all(n in layers for row in names for n in row):
            pieces = [[layers.pop(n) for n in row] for row in names]
            packed[tensor] = _stack_experts(pieces, dtype, backend)
        elif all(f"{n}.weight" in plain for row in names for n in row):
            weight = torch.stack(
                [torch.cat([plain.pop(f"{n}.weight") for n in row], dim=-2) for row in names]
            )
            loaded.add(_set_tensor_value(module, tensor, weight))
        else:
            raise CheckpointError(f"{name}: the checkpoint lacks some experts' {tensor}")
    if packed:
        for tensor, stacked in packed.items():
            current = module._parameters[tensor]
            assert current is not None
            if stacked.shape != tuple(current.shape):
                raise CheckpointError(
                    f"{name}.{tensor}: packed experts of shape {stacked.shape}, the model's is "
                    f"{tuple(current.shape)}"
                )
            loaded.add(id(stacked))
        attach(module, packed)


def _set_tensor_value(module: nn.Module, attr: str, value: Tensor) -> int:
    current = module._parameters[attr]
    assert current is not None
    parameter = nn.Parameter(value.to(current.dtype), requires_grad=False)
    module._parameters[attr] = parameter
    return id(parameter)


def _stack_experts(
    pieces: list[list[PackedLayer]], dtype: torch.dtype, backend: str
) -> PackedWeight:
    """One packed weight for all experts: codes and block scales stacked, halves on the rows."""
    layer = pieces[0][0]
    kind: PackedKind = layer.scheme.weight
    rows_axis = -2

    def rows(layer: PackedLayer, key: str) -> Tensor:
        value = layer.tensors[key]
        if value.dim() >= 2:
            return value
        # A per-tensor scale, repeated for each output row of this half.
        out_rows = layer.tensors["weight"].shape[rows_axis]
        if kind in ("int4", "int4_fp8"):
            out_rows *= 2
        return value.float().reshape(1, 1).expand(out_rows, 1)

    def stacked(key: str) -> Tensor:
        per_expert = [torch.cat([rows(p, key) for p in row], dim=rows_axis) for row in pieces]
        value = torch.stack(per_expert)
        if value.shape[-1] == 1 and bool((value == value[..., :1, :]).all()):
            return value[..., :1, :].contiguous()  # one scale per expert
        return value

    codes = torch.stack(
        [torch.cat([p.tensors["weight"] for p in row], dim=rows_axis) for row in pieces]
    )
    scale = stacked("weight_scale")
    if kind == "fp8":
        scale = scale.float()
    scale_2 = stacked("weight_scale_2") if "weight_scale_2" in layer.tensors else None
    return PackedWeight(kind, codes, scale, scale_2, dtype=dtype, backend=backend)


def restore_amax(
    recipe_plan: RecipePlan,
    quantizers: Mapping[str, AnyQuantizer],
    layout: CheckpointLayout,
    amax: Mapping[str, list[Tensor | None]] | None = None,
) -> None:
    """Every enabled activation quantizer's amax: the exact one of ``qrecipe-amax.json``
    where the checkpoint has it, else from the scale the checkpoint stores."""
    for slot in recipe_plan.slots:
        if slot.role == "weight":
            continue
        stages = [stage for stage in iter_stages(quantizers[slot.name]) if stage.enabled]
        if not stages:
            continue
        exact = (amax or {}).get(slot.name)
        if exact and exact[0] is not None and iter_stages(quantizers[slot.name])[0].enabled:
            stages[0].amax = exact[0].clone()
            continue
        scale, divisor = _activation_scale(slot.owner_name, slot.attr, slot.role, layout)
        if scale is None:
            raise CheckpointError(
                f"{slot.name}: the recipe quantizes it, but the checkpoint stores no scale for it"
            )
        stage = stages[0]
        if divisor is None:
            divisor = (
                NVFP4_GLOBAL_DIVISOR if stage.fmt.scheme == "nvfp4" else stage.fmt.element.max_value
            )
        stage.amax = scale.float().reshape(()) * divisor


def _activation_scale(
    owner: str, attr: str, role: str, layout: CheckpointLayout
) -> tuple[Tensor | None, float | None]:
    """(the stored scale, its divisor when fixed by the format) of one activation quantizer."""
    if role in ("k_bmm", "v_bmm"):
        found = layout.kv.get(owner)
        if found is None:
            return None, None
        return (found[1] if role == "k_bmm" else found[2]), E4M3_MAX
    if role != "input":
        return None, None
    layer = layout.layers.get(owner)
    if layer is not None:
        return layer.tensors.get("input_scale"), None
    # A fused-experts input quantizer: the largest of its experts' stored input scales.
    halves = ("down_proj",) if attr.startswith(SECOND_PROJECTION) else ("gate_proj", "up_proj")
    scales = [
        layer.tensors["input_scale"]
        for name, layer in layout.layers.items()
        if (m := _EXPERT_LAYER.match(name)) is not None
        and m["experts"] == owner
        and m["half"] in halves
        and "input_scale" in layer.tensors
    ]
    if not scales:
        return None, None
    return torch.stack([s.float().reshape(()) for s in scales]).max(), None
