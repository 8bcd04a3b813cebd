"""``export(model, directory, recipe)``: a quantized model written as a deployable checkpoint.

Exporting is a pipeline of named steps, each timed in the result:

1. **check**: every quantized layer has a layout in the chosen format (:mod:`.survey`), else
   one refusal names every problem, before anything is written;
2. **fuse**: layers that share an input get shared scales (:mod:`.fusion`);
3. **pack**: weights become codes and scales (:mod:`.collect`, :mod:`..kernels.packing`);
4. **write**: sharded safetensors, ``config.json`` with ``quantization_config``, the format's
   own files, the flat recipe, the calibrated amax (:mod:`.amax`), and the source
   directory's tokenizer and generation config (:mod:`.writer`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from tqdm.auto import tqdm

from ...language import Diagnostic, load_flat
from ..errors import UnsupportedRecipeError, unsupported
from ..matching import RecipePlan
from ..placement import has_quantizers
from ..timing import timed
from . import compressed_tensors, modelopt
from .amax import AMAX_FILE, write_amax
from .collect import Item, Packed, collect
from .fusion import check_groups, shared_input_groups, unify_scales
from .names import CheckpointNames, checkpoint_names, rename_quantization
from .schemes import Unexportable
from .survey import ExportPlan, survey_model, survey_recipe
from .tensors import to_cpu
from .writer import (
    copy_source_files,
    remove_stale_shards,
    write_json,
    write_recipe,
    write_tensors,
)

FlatSource = str | os.PathLike[str] | Mapping[str, Any]


@dataclass(frozen=True)
class ExportFormat:
    """One checkpoint format: what it can hold, its tensor names and its configuration files."""

    name: str
    schemes: frozenset[str]
    """Layer schemes (ModelOpt ``quant_algo`` names) it can hold."""
    kv: frozenset[str]
    tensors: Callable[[Iterable[Item]], Iterator[tuple[str, Tensor]]]
    configs: Callable[[ExportPlan, set[str]], tuple[dict[str, Any], dict[str, Any]]]
    """(extra JSON files by name, ``quantization_config`` for ``config.json``)."""
    problems: Callable[[ExportPlan], list[Diagnostic]] = lambda plan: []
    """What the format refuses beyond its schemes and KV formats."""
    recipe_problems: Callable[[Mapping[str, Any]], list[Diagnostic]] = lambda flat: []
    """What the format refuses in a flat recipe before calibration (an algorithm)."""


def _modelopt_configs(plan: ExportPlan, present: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    hf_config = modelopt.hf_quant_config(plan, present)
    return {"hf_quant_config.json": hf_config}, modelopt.quantization_config(hf_config)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    modelopt.NAME: ExportFormat(
        modelopt.NAME,
        frozenset(("FP8", "NVFP4", "W4A16_NVFP4", "W4A16_AWQ", "W4A8_AWQ")),
        frozenset(("fp8", "nvfp4")),
        modelopt.tensors,
        _modelopt_configs,
    ),
    compressed_tensors.NAME: ExportFormat(
        compressed_tensors.NAME,
        frozenset(compressed_tensors.SCHEMES),
        frozenset(("fp8",)),
        compressed_tensors.tensors,
        lambda plan, present: ({}, compressed_tensors.quantization_config(plan, present)),
        compressed_tensors.problems,
        compressed_tensors.recipe_problems,
    ),
}
"""The checkpoint formats, by their ``--export-format`` name."""


@dataclass
class ExportResult:
    """What an export wrote."""

    directory: Path
    export_format: str
    files: list[str]
    tensors: int
    tensor_bytes: int
    quantized_layers: dict[str, str]
    """Scheme (``quant_algo``) by layer name, as written."""
    unified_groups: list[list[str]] = field(default_factory=list)
    """Layers that share an input and now share their scales."""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "export_format": self.export_format,
            "files": self.files,
            "tensors": self.tensors,
            "tensor_bytes": self.tensor_bytes,
            "quantized_layers": self.quantized_layers,
            "unified_groups": self.unified_groups,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }


def find_format(name: str) -> ExportFormat:
    """The format called ``name`` (ValueError naming the known ones otherwise)."""
    if name not in EXPORT_FORMATS:
        raise ValueError(
            f"unknown export format {name!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    return EXPORT_FORMATS[name]


def check_format(plan: ExportPlan, fmt: ExportFormat) -> None:
    """Refuse layers and KV caches the format cannot hold (with the plan's own problems)."""
    found: dict[str, list[str]] = {}
    for name, scheme in plan.schemes().items():
        if scheme.algo not in fmt.schemes:
            found.setdefault(scheme.algo, []).append(name)
    for algo, names in found.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        plan.problems.append(
            unsupported(
                f"{algo} layers have no {fmt.name} layout ({shown})",
                "",
                hint=f"{fmt.name} holds {', '.join(sorted(fmt.schemes))}",
            )
        )
    plan.problems += fmt.problems(plan)
    kv = plan.kv_format
    if kv is not None and kv not in fmt.kv:
        plan.problems.append(unsupported(f"a {kv.upper()} KV cache has no {fmt.name} layout", ""))
    plan.raise_problems(fmt.name)


def check_exportable(
    recipe_plan: RecipePlan, export_format_name: str, flat: Mapping[str, Any] | None = None
) -> ExportPlan:
    """Refuse, before calibration, a recipe whose quantized layers the format cannot hold.

    ``flat``: the recipe, for what the format refuses in it beyond the layers' formats.
    """
    fmt = find_format(export_format_name)
    plan = survey_recipe(recipe_plan)
    if flat is not None:
        plan.problems += fmt.recipe_problems(flat)
    check_format(plan, fmt)
    return plan


def export(
    model: nn.Module,
    directory: str | os.PathLike[str],
    recipe: FlatSource,
    *,
    export_format: str = "modelopt",
    source: str | os.PathLike[str] | None = None,
    max_shard_size: int | str = "5GB",
    example_inputs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ExportResult:
    """Write ``model`` (quantized with ``recipe`` by :func:`~qrecipe.runtime.apply`) to
    ``directory`` as a checkpoint serving engines load.

    ``recipe`` is the flat recipe the model was quantized with (it travels in the checkpoint
    as ``recipe.flat.json``). ``source``: the model's original directory, whose tokenizer,
    generation config and other small files are copied. Layers sharing an input get shared
    scales in the model too (see :mod:`.fusion`); ``example_inputs`` are the keyword arguments
    of the forward pass that finds them (default: two tokens). Refusals
    (:class:`~qrecipe.runtime.UnsupportedRecipeError`) come before anything is written.
    """
    timings: dict[str, float] = {}
    out = Path(directory)
    with timed(timings, "total"):
        with timed(timings, "check"):
            flat = load_flat(recipe)
            _check_model(model)
            chosen = find_format(export_format)
            plan = survey_model(model)
            check_format(plan, chosen)
        with timed(timings, "fuse"):
            unified = _fuse(model, plan, chosen, example_inputs)
        with timed(timings, "pack"):
            items = _pack(model, plan, chosen, progress)
            names = checkpoint_names(model)
            tensors = to_cpu(_named_tensors(chosen, items, names))
        with timed(timings, "write"):
            files = _write(
                model, out, flat, plan, chosen, tensors, names, source, max_shard_size, progress
            )
    quantized = {
        names.module_to_checkpoint(item.layer): item.scheme.algo
        for item in items
        if isinstance(item, Packed)
    }
    return ExportResult(
        out,
        chosen.name,
        files,
        len(tensors),
        sum(t.numel() * t.element_size() for t in tensors.values()),
        quantized,
        unified,
        timings,
    )


def _check_model(model: nn.Module) -> None:
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise ValueError(
            "export needs a Hugging Face transformers model (one with a .config); "
            f"{type(model).__name__} has none"
        )
    if not has_quantizers(model):
        raise ValueError(
            "the model carries no qrecipe quantizers; quantize it with "
            "qrecipe.runtime.apply(model, recipe) before exporting"
        )


def _fuse(
    model: nn.Module,
    plan: ExportPlan,
    fmt: ExportFormat,
    example: Mapping[str, Any] | None,
) -> list[list[str]]:
    linears = {
        entry.name: entry.module for entry in plan.layers if isinstance(entry.module, nn.Linear)
    }
    if not linears:
        return []
    schemes = {entry.name: entry.scheme for entry in plan.layers}
    groups = shared_input_groups(model, linears, example)
    try:
        check_groups(groups, schemes)
        return unify_scales(model, groups, schemes)
    except Unexportable as exc:
        raise UnsupportedRecipeError(
            [unsupported(f"cannot export to {fmt.name}: {exc}", "")]
        ) from None


def _weights_dtype(model: nn.Module) -> str:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return str(parameter.dtype).removeprefix("torch.")
    return "float32"


def _pack(model: nn.Module, plan: ExportPlan, fmt: ExportFormat, progress: bool) -> list[Item]:
    items: list[Item] = []
    try:
        for item in tqdm(collect(model, plan), desc="packing", unit="tensor", disable=not progress):
            items.append(item)
    except Unexportable as exc:
        raise UnsupportedRecipeError(
            [unsupported(f"cannot export to {fmt.name}: {exc}", "")]
        ) from None
    return items


def _named_tensors(
    fmt: ExportFormat, items: list[Item], names: CheckpointNames
) -> dict[str, Tensor]:
    try:
        return {names.to_checkpoint(name): tensor for name, tensor in fmt.tensors(items)}
    except Unexportable as exc:
        raise UnsupportedRecipeError(
            [unsupported(f"cannot export to {fmt.name}: {exc}", "")]
        ) from None


def _write(
    model: nn.Module,
    out: Path,
    flat: Mapping[str, Any],
    plan: ExportPlan,
    fmt: ExportFormat,
    tensors: Mapping[str, Tensor],
    names: CheckpointNames,
    source: str | os.PathLike[str] | None,
    max_shard_size: int | str,
    progress: bool,
) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    copied = copy_source_files(Path(source), out) if source is not None else []
    config: Any = model.config
    generation = getattr(model, "generation_config", None)
    if "generation_config.json" not in copied and generation is not None:
        can_generate = getattr(model, "can_generate", None)
        if callable(can_generate) and can_generate():
            generation.save_pretrained(str(out))
            copied.append("generation_config.json")
    shards = write_tensors(
        out, tensors, max_shard_size, {"qrecipe_fingerprint": str(flat["fingerprint"])}, progress
    )
    remove_stale_shards(out, shards)
    present = {
        name
        for name, module in model.named_modules()
        if isinstance(getattr(module, "weight", None), Tensor)
    }
    extra, quantization = fmt.configs(plan, present)
    # Module names in the published checkpoint's terms, as the tensors (see .names).
    rename_quantization(quantization, names.module_to_checkpoint)
    for content in extra.values():
        if isinstance(content.get("quantization"), dict):
            rename_quantization(content["quantization"], names.module_to_checkpoint)
    # As transformers' save_pretrained writes it: the differences from the defaults, and the
    # dtype of the weights kept unquantized.
    config_data = config.to_diff_dict()
    config_data["dtype"] = _weights_dtype(model)
    config_data["quantization_config"] = quantization
    write_json(out / "config.json", config_data)
    for name, content in extra.items():
        write_json(out / name, content)
    write_recipe(out, flat)
    write_amax(out, model)
    return sorted({*copied, *shards, "config.json", *extra, "recipe.flat.json", AMAX_FILE})
