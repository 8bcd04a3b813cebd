"""Build a model from its ``config.json`` on the ``meta`` device and list its quantizers.

A ``meta`` tensor has a shape and no storage, so even a model with hundreds of billions of
parameters is built in about a second and a few hundred megabytes. The quantizers are planned
by the runtime itself (the planner ``apply`` uses), so their names are exactly those ``apply``
would create, and a recipe decides them with the runtime's own matching.

This module imports torch and transformers; :mod:`qrecipe.review` loads it only for
``--model``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn

from ..runtime.kernels import QuantFormat, UnsupportedFormatError
from ..runtime.matching import Decision, class_names, decide, display_class_name
from ..runtime.placement import Slot, plan
from .model import CONFIG_FILE, ModelLoadError
from .quantizers import Decided, ModelSkeleton, QuantizerSlot, QuantizerState


def config_file(source: str | os.PathLike[str]) -> Path:
    """The ``config.json`` of a model directory, or the file itself."""
    path = Path(source)
    if path.is_dir():
        path = path / CONFIG_FILE
        if not path.is_file():
            raise ModelLoadError(f"{source}: the directory has no {CONFIG_FILE}")
    elif not path.is_file():
        raise ModelLoadError(f"{source}: no such model directory or config file")
    return path


def read_config(path: Path) -> transformers.PretrainedConfig:
    """The transformers configuration in ``path``; remote code is never run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise ModelLoadError(
            f"{path}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: a model configuration is a JSON object")
    model_type = data.get("model_type")
    if not isinstance(model_type, str):
        raise ModelLoadError(f"{path}: no 'model_type' (e.g. \"llama\") in the configuration")
    try:
        return transformers.AutoConfig.for_model(**data)
    except (ValueError, TypeError, KeyError) as error:
        known = "transformers " + transformers.__version__
        raise ModelLoadError(
            f"{path}: model_type {model_type!r} is not one {known} builds ({error}); "
            "architectures that need remote code cannot be built here"
        ) from None


def model_class(config: transformers.PretrainedConfig) -> type[nn.Module]:
    """The class the checkpoint names in ``architectures``, else a causal LM or base model."""
    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            return cls
    for auto in (transformers.AutoModelForCausalLM, transformers.AutoModel):
        mapping: Any = auto._model_mapping  # the classes each auto class builds, by config
        if type(config) in mapping:
            found: type[nn.Module] = mapping[type(config)]
            return found
    raise ModelLoadError(f"transformers has no model class for {type(config).__name__}")


def build_on_meta(config: transformers.PretrainedConfig) -> nn.Module:
    """The model with every parameter on the ``meta`` device: shapes, no storage."""
    cls = model_class(config)
    try:
        with torch.device("meta"):
            model = cls(config)
    except Exception as error:  # a broken configuration fails inside the model's own code
        raise ModelLoadError(
            f"{cls.__name__} cannot be built from this configuration: {error}"
        ) from None
    return model


def load_skeleton(source: str | os.PathLike[str]) -> ModelSkeleton:
    """The quantizers of the model a directory or ``config.json`` describes, without weights."""
    path = config_file(source)
    model = build_on_meta(read_config(path))
    slots = [slot for owner in plan(model) for slot in owner.slots]
    records = _records(slots)
    can_generate = getattr(model, "can_generate", None)
    generates = bool(can_generate()) if callable(can_generate) else False

    def decider(quant_cfg: Sequence[dict[str, Any]]) -> Decided:
        decisions, matches = decide(slots, list(quant_cfg))
        return Decided(
            states=[_state(record, decisions[record.name]) for record in records],
            matched=[len(match.matched) for match in matches],
        )

    return ModelSkeleton(
        source=os.fspath(source),
        architecture=type(model).__name__,
        generates=generates,
        slots=records,
        decider=decider,
    )


def _records(slots: list[Slot]) -> list[QuantizerSlot]:
    classes: dict[int, tuple[str, frozenset[str]]] = {}
    records = []
    for slot in slots:
        key = id(slot.parent)
        if key not in classes:
            classes[key] = (display_class_name(slot.parent), frozenset(class_names(slot.parent)))
        shown, names = classes[key]
        records.append(
            QuantizerSlot(
                name=slot.name,
                owner=slot.owner_name,
                attr=slot.attr,
                role=slot.role,
                owner_class=shown,
                classes=names,
                expert=slot.expert,
            )
        )
    return records


_FORMAT_NAMES: dict[str, str] = {}


def format_name(attributes: dict[str, Any]) -> str:
    """The runtime's name of one attribute object's format, e.g. ``FP8 E4M3 per-tensor``."""
    key = json.dumps(attributes, sort_keys=True)
    name = _FORMAT_NAMES.get(key)
    if name is None:
        try:
            name = QuantFormat.from_cfg(attributes).describe()
        except UnsupportedFormatError as error:
            name = f"unsupported ({error})"
        _FORMAT_NAMES[key] = name
    return name


def _state(slot: QuantizerSlot, decision: Decision) -> QuantizerState:
    attributes = decision.attributes
    stages = attributes if isinstance(attributes, list) else [attributes]
    return QuantizerState(
        slot=slot,
        enabled=decision.enabled,
        format=" -> ".join(format_name(stage) for stage in stages),
        decided_by=decision.decided_by,
        configured_by=decision.configured_by,
    )
