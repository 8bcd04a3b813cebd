"""A Hugging Face model directory quantized to a checkpoint: ``qrecipe quantize`` without the
command line.

:func:`check` refuses, from the model's skeleton alone (built on the ``meta`` device: no weight
is read), everything the runtime or the chosen export format cannot do; :func:`dry_run`
shows what would be quantized; :func:`quantize_to_checkpoint` then loads the model,
tokenizes the calibration samples, checks the layers engines fuse, calibrates
(:func:`~.apply.apply`) and exports (:func:`~.export.export`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .apply import apply, configure, load_recipe, plan_and_check
from .calibration import CalibrationResult, CheckpointMismatchError
from .errors import UnsupportedRecipeError, unsupported
from .export import ExportResult, check_exportable, export
from .export.fusion import check_groups, shared_input_groups
from .export.schemes import Unexportable
from .export.survey import ExportPlan, survey_recipe
from .matching import RecipePlan
from .report import QuantReport, build_report
from .timing import timed

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class QuantizeError(ValueError):
    """The model, its tokenizer or the options cannot be used; the message says why."""


@dataclass
class QuantizeOptions:
    """The knobs of ``qrecipe quantize``."""

    calib_samples: int = 32
    seq_len: int = 256
    batch_size: int = 4
    device: str = "auto"
    dtype: str = "auto"
    export_format: str = "modelopt"
    max_shard_size: str = "5GB"
    backend: str = "auto"


@dataclass
class Outcome:
    """What a quantization to a checkpoint did."""

    report: QuantReport
    export: ExportResult
    samples: int
    batches: int
    device: str
    dtype: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": {"samples": self.samples, "batches": self.batches},
            "device": self.device,
            "dtype": self.dtype,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "quantization": self.report.to_dict(),
            "export": self.export.to_dict(),
        }


def model_class(model_dir: Path) -> tuple[Any, Any]:
    """The transformers class of a model directory and its configuration (both untyped:
    transformers ships no type information)."""
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - needs an environment without transformers
        raise QuantizeError(
            f"qrecipe quantize needs transformers ({exc}); pip install 'qrecipe[quantize]'"
        ) from None
    try:
        config = transformers.AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise QuantizeError(f"{model_dir}: cannot read the model's config.json ({exc})") from None
    architectures = getattr(config, "architectures", None) or []
    cls = getattr(transformers, architectures[0], None) if architectures else None
    if cls is None:
        raise QuantizeError(
            f"{model_dir / 'config.json'}: architectures {architectures!r} names no model class "
            "of transformers"
        )
    return cls, config


def resolve_device(device: str) -> str:
    """``auto``: CUDA when there is a GPU, else the CPU; refuse CUDA without one."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise QuantizeError(f"--device {device}: no CUDA device is available")
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise QuantizeError(f"--device {device}: {exc}") from None
    return device


def resolve_dtype(dtype: str, config: Any) -> torch.dtype:
    """``auto``: the dtype the model was saved in (float32 when it does not say)."""
    if dtype != "auto":
        return DTYPES[dtype]
    saved = getattr(config, "dtype", None)
    if isinstance(saved, torch.dtype) and saved in DTYPES.values():
        return saved
    if isinstance(saved, str) and saved in DTYPES:
        return DTYPES[saved]
    return torch.float32


def skeleton(model_dir: Path, dtype: torch.dtype) -> nn.Module:
    """The model's modules on the ``meta`` device: its structure, no weights."""
    cls, config = model_class(model_dir)
    with torch.device("meta"):
        model: nn.Module = cls._from_config(config, dtype=dtype)
    return model


def check(
    model: nn.Module, flat: Mapping[str, Any], options: QuantizeOptions
) -> tuple[RecipePlan, ExportPlan]:
    """Every refusal that needs only the model's structure: recipe, formats, export layout."""
    document = load_recipe(model, flat, options.backend)
    recipe_plan = plan_and_check(model, document)
    export_plan = check_exportable(recipe_plan, options.export_format, document)
    if not export_plan.schemes() and not export_plan.kv:
        raise UnsupportedRecipeError(
            [unsupported("the recipe quantizes no layer of this model: nothing to export", "")]
        )
    return recipe_plan, export_plan


def dry_run(
    model_dir: Path, flat: Mapping[str, Any], options: QuantizeOptions
) -> tuple[QuantReport, ExportPlan]:
    """The report of the quantizers the recipe places (uncalibrated) and the export plan."""
    _, config = model_class(model_dir)
    model = skeleton(model_dir, resolve_dtype(options.dtype, config))
    recipe_plan, export_plan = check(model, flat, options)
    quantizers = configure(recipe_plan, options.backend)
    report = build_report(model, flat, recipe_plan, quantizers, CalibrationResult(), "none")
    return report, export_plan


def tokenize(tokenizer: Any, samples: list[str], seq_len: int, batch_size: int) -> list[Any]:
    """Batches of token ids (and attention masks), each sample cut to ``seq_len`` tokens."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            batch_size = 1  # nothing to pad with: one sample per batch
    batches = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batches.append(
            tokenizer(
                chunk,
                return_tensors="pt",
                truncation=True,
                max_length=seq_len,
                padding=len(chunk) > 1,
            )
        )
    return batches


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise QuantizeError(f"{model_dir}: cannot load the tokenizer ({exc})") from None


def quantize_to_checkpoint(
    model_dir: str | os.PathLike[str],
    flat: Mapping[str, Any],
    samples: list[str],
    out: str | os.PathLike[str],
    options: QuantizeOptions,
    *,
    progress: bool = True,
) -> Outcome:
    """Load, check, calibrate and export; every refusal comes before calibration."""
    source = Path(model_dir)
    timings: dict[str, float] = {}
    with timed(timings, "total"):
        with timed(timings, "check"):
            cls, config = model_class(source)
            dtype = resolve_dtype(options.dtype, config)
            device = resolve_device(options.device)
            check(skeleton(source, dtype), flat, options)
            tokenizer = load_tokenizer(source)
            batches = tokenize(tokenizer, samples, options.seq_len, options.batch_size)
        with timed(timings, "load"):
            model = cls.from_pretrained(str(source), dtype=dtype).to(device).eval()
            batches = [batch.to(device) for batch in batches]
        with timed(timings, "check_fusion"):
            _check_fused_layers(model, flat, options, batches[0])

        def forward_loop(m: nn.Module) -> None:
            # The runtime's own progress bar counts the batches.
            with torch.no_grad():
                for batch in batches:
                    m(**batch)

        with timed(timings, "quantize"):
            try:
                report = apply(
                    model,
                    flat,
                    forward_loop=forward_loop,
                    backend=options.backend,
                    progress=progress,
                )
            except CheckpointMismatchError as exc:
                raise QuantizeError(str(exc)) from None
        with timed(timings, "export"):
            result = export(
                model,
                out,
                flat,
                export_format=options.export_format,
                source=source,
                max_shard_size=options.max_shard_size,
                example_inputs=dict(batches[0]),
                progress=progress,
            )
    return Outcome(
        report,
        result,
        len(samples),
        len(batches),
        device,
        str(dtype).removeprefix("torch."),
        timings,
    )


def _check_fused_layers(
    model: nn.Module, flat: Mapping[str, Any], options: QuantizeOptions, batch: Any
) -> None:
    """Refuse, before calibration, layers engines fuse that the recipe quantizes differently."""
    document = load_recipe(model, flat, options.backend)
    export_plan = survey_recipe(plan_and_check(model, document))
    linears = {e.name: e.module for e in export_plan.layers if isinstance(e.module, nn.Linear)}
    if not linears:
        return
    groups = shared_input_groups(model, linears, dict(batch))
    try:
        check_groups(groups, {e.name: e.scheme for e in export_plan.layers})
    except Unexportable as exc:
        raise UnsupportedRecipeError(
            [unsupported(f"cannot export to {options.export_format}: {exc}", "")]
        ) from None
