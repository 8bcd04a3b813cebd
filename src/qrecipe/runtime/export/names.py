"""Tensor names as the model's published checkpoints spell them, and back.

``transformers`` 5 renames some checkpoints' tensors while loading them (its "conversion
mapping"): Mixtral's ``block_sparse_moe.experts.<i>.w1``/``w3``/``w2`` become the fused
``mlp.experts.gate_up_proj`` and ``mlp.experts.down_proj`` of the model in memory. Serving
engines read the published names, and ModelOpt's exporter writes them, so an export maps every
name back (:meth:`CheckpointNames.to_checkpoint`) and :func:`~qrecipe.runtime.load` maps them
forward again (:meth:`CheckpointNames.to_model`).

Two kinds of rules come from the mapping:

* renamings (``.block_sparse_moe.`` <-> ``.mlp.``), regular expressions applied to the name;
* expert converters, which stack the per-expert layers into fused parameters. The export
  writes one layer per expert already (``experts.<i>.gate_proj``, ``up_proj``,
  ``down_proj``), so only the per-expert layer names change (``gate_proj`` <-> ``w1``,
  ``up_proj`` <-> ``w3``, ``down_proj`` <-> ``w2``).

On the way out the expert names change first and the renamings apply in reverse order; on
the way in, the renamings in order and then the expert names, as transformers loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .collect import GATE_UP_HALVES

# The per-expert layers a fused projection is exported as (see :mod:`.collect`).
FUSED_PARTS = {"gate_up_proj": GATE_UP_HALVES}
# A module name is mapped as the name of one of its tensors, so that rules anchored on the
# dot after a module name apply; this leaf is removed again afterwards.
_PROBE = ".\x00module"

Rule = tuple[re.Pattern[str], str]


@dataclass(frozen=True)
class CheckpointNames:
    """Renaming rules between a model's names in memory and in its published checkpoints."""

    outward: list[Rule] = field(default_factory=list)
    inward: list[Rule] = field(default_factory=list)

    def to_checkpoint(self, name: str) -> str:
        """The published checkpoint's name of a tensor named ``name`` in memory."""
        return _apply(self.outward, name)

    def to_model(self, name: str) -> str:
        """The in-memory name of a tensor named ``name`` in a published checkpoint."""
        return _apply(self.inward, name)

    def module_to_checkpoint(self, name: str) -> str:
        """A module name (or a ``prefix*`` / ``prefix.*`` pattern) in the checkpoint's terms."""
        base, wildcard = _split_wildcard(name)
        return _apply(self.outward, base + _PROBE).removesuffix(_PROBE) + wildcard

    def module_to_model(self, name: str) -> str:
        """A module name of the checkpoint in the model's terms."""
        base, wildcard = _split_wildcard(name)
        return _apply(self.inward, base + _PROBE).removesuffix(_PROBE) + wildcard

    def __bool__(self) -> bool:
        return bool(self.outward)


IDENTITY = CheckpointNames()


def _apply(rules: list[Rule], name: str) -> str:
    for pattern, replacement in rules:
        name = pattern.sub(replacement, name)
    return name


def _split_wildcard(name: str) -> tuple[str, str]:
    for wildcard in (".*", "*"):
        if name.endswith(wildcard):
            return name.removesuffix(wildcard), wildcard
    return name, ""


def checkpoint_names(model: nn.Module) -> CheckpointNames:
    """The renaming rules of ``model``'s conversion mapping (none for most models).

    Only what transformers applies to a model built from its config is read: renamings
    (prefix changes are left out, as transformers leaves them out when saving such a model)
    and expert converters. Other conversions (a dense fused projection) keep the in-memory
    names.
    """
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import PrefixChange, WeightConverter, WeightRenaming
        from transformers.modeling_utils import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers without conversion mappings
        return IDENTITY
    if not isinstance(model, PreTrainedModel):
        return IDENTITY
    conversions = getattr(model, "_weight_conversions", None)
    if conversions is None:
        conversions = get_model_conversion_mapping(model, add_legacy=False)
    renamings: list[Rule] = []
    reverted: list[Rule] = []
    experts: list[tuple[str, str]] = []
    for conversion in conversions or []:
        if isinstance(conversion, PrefixChange) or getattr(conversion, "scope_prefix", None):
            continue
        if isinstance(conversion, WeightRenaming):
            # transformers reverses its own patterns (anchors and groups included).
            renamings += _pairs(conversion)
            reverted += _pairs(conversion.reverse_transform())
        elif isinstance(conversion, WeightConverter):
            experts += _expert_leaves(conversion)
    outward = [_leaf_rule(part, hub) for part, hub in experts]
    outward += reversed(reverted)
    inward = list(renamings)
    inward += [_leaf_rule(hub, part) for part, hub in experts]
    return CheckpointNames(outward, inward)


def _pairs(renaming: Any) -> list[Rule]:
    sources, targets = _patterns(renaming.source_patterns), _patterns(renaming.target_patterns)
    return [(re.compile(s), t) for s, t in zip(sources, targets, strict=True)]


def _patterns(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _leaf_rule(old: str, new: str) -> Rule:
    return re.compile(rf"(\.experts\.\d+\.){re.escape(old)}(?=\.|$)"), rf"\g<1>{new}"


_EXPERT_SOURCE = re.compile(r"experts\.\*\.(?P<leaf>\w+)\.weight$")
_FUSED_TARGET = re.compile(r"experts\.(?P<leaf>\w+)$")


def _expert_leaves(converter: Any) -> list[tuple[str, str]]:
    """(exported per-expert layer, published layer) pairs of an expert converter."""
    targets = _patterns(converter.target_patterns)
    sources = _patterns(converter.source_patterns)
    fused = _FUSED_TARGET.search(targets[0]) if len(targets) == 1 else None
    published = [_EXPERT_SOURCE.search(source) for source in sources]
    if fused is None or not all(published):
        return []
    parts = FUSED_PARTS.get(fused["leaf"], (fused["leaf"],))
    if len(parts) != len(published):
        return []
    return [
        (part, match["leaf"])
        for part, match in zip(parts, published, strict=True)
        if match is not None and match["leaf"] != part
    ]


def rename_quantization(config: dict[str, Any], rename: Callable[[str], str]) -> None:
    """Module names in a quantization configuration, renamed in place.

    The lists ``exclude_modules`` and ``ignore``, the keys of ``quantized_layers`` and each
    config group's ``targets`` (except class names such as ``Linear``).
    """
    for key in ("exclude_modules", "ignore"):
        if isinstance(config.get(key), list):
            config[key] = [rename(name) for name in config[key]]
    layers = config.get("quantized_layers")
    if isinstance(layers, dict):
        config["quantized_layers"] = {rename(name): value for name, value in layers.items()}
    for group in (config.get("config_groups") or {}).values():
        targets = group.get("targets")
        if isinstance(targets, list):
            group["targets"] = [name if "." not in name else rename(name) for name in targets]


__all__ = ["IDENTITY", "CheckpointNames", "checkpoint_names", "rename_quantization"]
