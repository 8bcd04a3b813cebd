"""The result of :func:`qrecipe.runtime.apply`: what was placed, decided and calibrated."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .calibration import CalibrationResult
from .matching import EntryMatch, RecipePlan, class_names, display_class_name
from .quantizer import AnyQuantizer, iter_stages


@dataclass
class AmaxStats:
    """Summary of a calibrated amax tensor."""

    min: float
    max: float
    mean: float
    numel: int
    shape: list[int]


@dataclass
class QuantizerRecord:
    """One quantizer in the report."""

    name: str
    parent_class: str
    role: str
    format: str
    enabled: bool
    decided_by: int | None
    """Index of the quant_cfg entry that decided the quantizer (the last one matching it)."""
    configured_by: int | None
    """Index of the entry whose ``cfg`` set its attributes; None means placement defaults."""
    amax: AmaxStats | None = None
    """For sequences, the statistics of the stages' amax values taken together."""
    algorithm: dict[str, Any] | None = None
    """What the calibration algorithm chose for this quantizer: AWQ's ``awq_alpha`` and
    ``pre_quant_scale`` statistics, ``awq_clip_ratio``, ``gptq_relative_error``,
    ``mse_multiplier``, ``smoothquant_alpha``, ``headroom``, ... (None when nothing)."""


@dataclass
class EntryRecord:
    """One quant_cfg entry and how many quantizers it matched."""

    index: int
    quantizer_name: str
    parent_class: str | None
    enable: bool
    has_cfg: bool
    matched: int


@dataclass
class QuantReport:
    """Every quantizer with its final format, enable flag, deciding entry and amax statistics.

    ``print(report)`` shows a table; :meth:`to_dict` / :meth:`to_json` give the same content
    as data.
    """

    fingerprint: str
    algorithm: dict[str, Any] | None
    backend: str
    quantizers: list[QuantizerRecord] = field(default_factory=list)
    entries: list[EntryRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    calibration_batches: int = 0

    @property
    def enabled(self) -> list[QuantizerRecord]:
        """The quantizers that quantize."""
        return [q for q in self.quantizers if q.enabled]

    @property
    def disabled(self) -> list[QuantizerRecord]:
        """The quantizers that pass tensors through."""
        return [q for q in self.quantizers if not q.enabled]

    @property
    def counts(self) -> dict[str, int]:
        """Number of quantizers in total, enabled and disabled."""
        enabled = len(self.enabled)
        return {
            "total": len(self.quantizers),
            "enabled": enabled,
            "disabled": len(self.quantizers) - enabled,
        }

    def formats(self) -> dict[str, int]:
        """How many enabled quantizers use each format."""
        found: dict[str, int] = {}
        for record in self.enabled:
            found[record.format] = found.get(record.format, 0) + 1
        return dict(sorted(found.items()))

    def __getitem__(self, name: str) -> QuantizerRecord:
        for record in self.quantizers:
            if record.name == name:
                return record
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content of the report."""
        return {
            "fingerprint": self.fingerprint,
            "algorithm": self.algorithm,
            "backend": self.backend,
            "counts": self.counts,
            "formats": self.formats(),
            "calibration_batches": self.calibration_batches,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
            "entries": [asdict(e) for e in self.entries],
            "quantizers": [asdict(q) for q in self.quantizers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def table(self, *, only_enabled: bool = False) -> str:
        """The quantizers as an aligned text table."""
        header = (
            "quantizer",
            "parent",
            "format",
            "on",
            "entry",
            "amax min",
            "amax mean",
            "amax max",
            "algorithm",
        )
        rows = [header]
        for q in self.quantizers:
            if only_enabled and not q.enabled:
                continue
            entry = "-" if q.decided_by is None else str(q.decided_by)
            if q.amax is None:
                amax = ("", "", "")
            else:
                amax = (f"{q.amax.min:.4g}", f"{q.amax.mean:.4g}", f"{q.amax.max:.4g}")
            fmt = q.format if q.enabled else f"({q.format})"
            result = _brief(q.algorithm)
            rows.append(
                (q.name, q.parent_class, fmt, "yes" if q.enabled else "no", entry, *amax, result)
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        numeric = {4, 5, 6, 7}
        lines = []
        for n, row in enumerate(rows):
            cells = [
                cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def summary(self) -> str:
        """A few lines: recipe, counts, formats, timings, warnings."""
        counts = self.counts
        method = "none" if self.algorithm is None else self.algorithm.get("method")
        formats = ", ".join(f"{k} x{v}" for k, v in self.formats().items()) or "none"
        timings = ", ".join(f"{k} {v:.3f}s" for k, v in self.timings.items())
        lines = [
            f"recipe {self.fingerprint[:19]}...  calibration: {method}  backend: {self.backend}",
            f"quantizers: {counts['total']} ({counts['enabled']} enabled, "
            f"{counts['disabled']} disabled); formats: {formats}",
            f"time: {timings}",
        ]
        # Shared exclusion lists name modules of many architectures; that most of their
        # entries match nothing in one model is expected, so they are counted, not listed.
        quiet = {
            f"quant_cfg entry {e.index} "
            for e in self.entries
            if e.matched == 0 and not e.enable and not e.has_cfg
        }
        skipped = 0
        for warning in self.warnings:
            if any(warning.startswith(prefix) for prefix in quiet) and "written nn." not in warning:
                skipped += 1
            else:
                lines.append(f"warning: {warning}")
        if skipped:
            lines.append(
                f"note: {skipped} exclusion {'entry' if skipped == 1 else 'entries'} "
                "(enable: false) matched nothing, as expected "
                "of a shared exclusion list; report.warnings lists them"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.summary()}\n\n{self.table()}"


# -- building the report ------------------------------------------------------------------------


def build_report(
    model: nn.Module,
    document: Mapping[str, Any],
    plan: RecipePlan,
    quantizers: Mapping[str, AnyQuantizer],
    calibration: CalibrationResult,
    backend: str,
) -> QuantReport:
    """The report of a recipe applied to ``model`` (timings are the caller's to add)."""
    slots = plan.slots
    model_classes = set().union(*(class_names(m) for m in model.modules()))
    warnings = [_unmatched_warning(e, model_classes) for e in plan.matches if not e.matched]
    untouched = [
        s.name
        for s in slots
        if plan.decisions[s.name].decided_by is None and plan.decisions[s.name].enabled
    ]
    if untouched:
        warnings.append(
            f"{len(untouched)} quantizer(s) matched no entry and keep their default attributes "
            f"(8-bit integer, enabled), e.g. {untouched[0]}; recipes usually start with "
            "{quantizer_name: '*', enable: false}"
        )
    warnings += calibration.warnings
    report = QuantReport(
        fingerprint=document["fingerprint"],
        algorithm=document["quantize"].get("algorithm"),
        backend=backend,
        entries=[
            EntryRecord(
                e.index, e.quantizer_name, e.parent_class, e.enable, e.has_cfg, len(e.matched)
            )
            for e in plan.matches
        ],
        warnings=warnings,
        calibration_batches=calibration.batches,
    )
    for slot in slots:
        quantizer = quantizers[slot.name]
        decision = plan.decisions[slot.name]
        report.quantizers.append(
            QuantizerRecord(
                name=slot.name,
                parent_class=display_class_name(slot.parent),
                role=slot.role,
                format=quantizer.describe(),
                enabled=quantizer.enabled,
                decided_by=decision.decided_by,
                configured_by=decision.configured_by,
                amax=_amax_stats(quantizer),
                algorithm=calibration.details.get(slot.name),
            )
        )
    return report


def _brief(results: dict[str, Any] | None) -> str:
    """A calibration result in a few characters: ``awq_alpha=0.5 pre_quant_scale=0.4..2.1``."""
    if not results:
        return ""
    parts = []
    for key, value in results.items():
        if isinstance(value, dict) and {"min", "max"} <= set(value):
            parts.append(f"{key}={value['min']:.3g}..{value['max']:.3g}")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        elif isinstance(value, dict):
            inner = ",".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
            )
            parts.append(f"{key}({inner})")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _unmatched_warning(entry: EntryMatch, model_classes: set[str]) -> str:
    text = f"quant_cfg entry {entry.index} (quantizer_name {entry.quantizer_name!r}"
    if entry.parent_class:
        text += f", parent_class {entry.parent_class!r}"
    text += ") matched no quantizer"
    if entry.parent_class and entry.parent_class not in model_classes:
        text += f"; the model has no module of class {entry.parent_class}"
        if f"nn.{entry.parent_class}" in model_classes:
            text += f" (torch classes are written nn.{entry.parent_class})"
    return text


def _amax_stats(quantizer: AnyQuantizer) -> AmaxStats | None:
    values = [
        s.amax.detach().float().flatten() for s in iter_stages(quantizer) if s.amax is not None
    ]
    if not values:
        return None
    joined = torch.cat([v.cpu() for v in values])
    first = next(s.amax for s in iter_stages(quantizer) if s.amax is not None)
    return AmaxStats(
        min=float(joined.min()),
        max=float(joined.max()),
        mean=float(joined.mean()),
        numel=int(joined.numel()),
        shape=list(first.shape),
    )
