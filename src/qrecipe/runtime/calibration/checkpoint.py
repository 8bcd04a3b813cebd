"""Checkpoints of layer-by-layer calibration (``checkpoint_dir``, ``save_every``).

A long layer-by-layer run can be interrupted and resumed. The directory holds

* ``layer-NNNNN.pt``, written as soon as decoder layer ``NNNNN`` is calibrated: the state of its
  quantizers (attributes, ``amax``, ``pre_quant_scale``, ``global_amax``), the weights the
  algorithm changed (AWQ, SmoothQuant, GPTQ) and the algorithm's per-quantizer results; plain
  tensors and Python values only, read back with ``torch.load(weights_only=True)``;
* ``manifest.json``, rewritten (atomically) every ``save_every`` layers and after the last: the
  number of layers committed, the recipe's fingerprint, a digest of the model's structure and a
  digest of the inputs of the first layer not committed (of the last layer once all are).

A layer file beyond the committed count is ignored: a run stopped between two commits redoes
the layers after the last one. Resuming restores the committed layers, recomputes the inputs of
the next one with the restored layers (rather than storing activations, which can be far larger
than the weights) and checks their digest: different calibration data, or different weights in
the restored layers, are refused instead of silently mixing two calibrations.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..placement.base import Wiring
from ..quantizer import iter_stages
from .base import Calibration, Placed

MANIFEST = "manifest.json"
FORMAT = "qrecipe layerwise calibration checkpoint"
VERSION = 1

_STAGE_TENSORS = ("amax", "pre_quant_scale", "global_amax")


class CheckpointMismatchError(ValueError):
    """``checkpoint_dir`` holds the checkpoint of another recipe, model or calibration data."""


def _update_tensor(digest: Any, tensor: torch.Tensor) -> None:
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    if tensor.device.type == "meta":
        return
    data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8)
    digest.update(data.numpy().data)


def _update_value(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        _update_tensor(digest, value)
    elif isinstance(value, (tuple, list)):
        digest.update(f"[{len(value)}".encode())
        for item in value:
            _update_value(digest, item)
    elif isinstance(value, Mapping):
        digest.update(f"{{{len(value)}".encode())
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _update_value(digest, value[key])
    elif value is None or isinstance(value, (bool, int, float, str)):
        digest.update(repr(value).encode())
    else:
        # A key-value cache or another object: replays reset it, so its kind is what counts.
        digest.update(type(value).__qualname__.encode())


def inputs_digest(calls: Iterable[tuple[tuple[Any, ...], dict[str, Any]]]) -> str:
    """A digest of a decoder layer's captured inputs (every tensor's bytes, shapes and dtypes)."""
    digest = hashlib.blake2b(digest_size=20)
    for args, kwargs in calls:
        _update_value(digest, args)
        _update_value(digest, kwargs)
    return digest.hexdigest()


def model_digest(model: nn.Module) -> str:
    """A digest of what identifies a model without reading its weights: its class, its
    configuration (when it has one) and the names, shapes and dtypes of its parameters."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(type(model).__qualname__.encode())
    config = getattr(model, "config", None)
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict):
        # Where the model was loaded from, and by which library version, does not change it.
        settings = {
            k: v
            for k, v in to_dict().items()
            if not k.startswith("_") and k != "transformers_version"
        }
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, parameter in model.named_parameters():
        digest.update(f"{name}:{parameter.dtype}:{tuple(parameter.shape)};".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Identity:
    """What a checkpoint belongs to."""

    recipe: str
    model: str
    layers: int
    save_every: int


def _layer_file(directory: Path, index: int) -> Path:
    return directory / f"layer-{index:05d}.pt"


def _atomic_write(path: Path, write: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def _relative(name: str, prefix: str) -> str:
    return name[len(prefix) + 1 :] if name.startswith(prefix + ".") else name


def layer_state(calibration: Calibration, layer: nn.Module, placed: Placed, prefix: str) -> Any:
    """The calibrated state of one decoder layer (its weights loaded), as plain values."""
    quantizers: dict[str, list[dict[str, Any]]] = {}
    for slot, quantizer in placed:
        quantizers[_relative(slot.name, prefix)] = [
            {
                "attributes": stage.attributes,
                **{name: getattr(stage, name) for name in _STAGE_TENSORS},
            }
            for stage in iter_stages(quantizer)
        ]
    weights: dict[str, torch.Tensor] = {}
    for module_name, module in layer.named_modules():
        wiring = Wiring.of(module)
        if wiring is None:
            continue
        for parameter_name in wiring.originals:
            parameter = module._parameters[parameter_name]
            if parameter is not None:
                key = f"{module_name}.{parameter_name}" if module_name else parameter_name
                weights[key] = parameter.detach().clone()
    details = {
        _relative(slot.name, prefix): calibration.result.details[slot.name]
        for slot, _ in placed
        if slot.name in calibration.result.details
    }
    return {"quantizers": quantizers, "weights": weights, "details": details}


def restore_layer_state(
    calibration: Calibration, layer: nn.Module, placed: Placed, prefix: str, state: Any
) -> None:
    """Put a saved state back into a decoder layer (its weights loaded)."""
    saved_quantizers = state["quantizers"]
    for slot, quantizer in placed:
        saved = saved_quantizers.get(_relative(slot.name, prefix))
        stages = iter_stages(quantizer)
        if saved is None or len(saved) != len(stages):
            raise CheckpointMismatchError(f"the checkpoint has no state for quantizer {slot.name}")
        for stage, values in zip(stages, saved, strict=True):
            if values["attributes"] != stage.attributes:
                stage.configure(values["attributes"])
            stage.amax = values["amax"]
            stage.pre_quant_scale = values["pre_quant_scale"]
            stage.global_amax = values["global_amax"]
    for key, value in state["weights"].items():
        module_name, _, parameter_name = key.rpartition(".")
        calibration.replace_weight(layer.get_submodule(module_name), value, parameter_name)
    for name, values in state["details"].items():
        calibration.result.record(f"{prefix}.{name}", **values)


class LayerCheckpoint:
    """Reads and writes the checkpoint of one layer-by-layer run in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], identity: Identity) -> None:
        self.directory = Path(directory)
        self.identity = identity

    def committed(self) -> tuple[int, str | None]:
        """How many layers a compatible checkpoint holds (0 when there is none), and the digest
        of the inputs of the next layer (of the last once all are done).

        A checkpoint of another recipe or model is refused with what differs.
        """
        path = self.directory / MANIFEST
        if not path.is_file():
            return 0, None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointMismatchError(
                f"{path}: not a readable checkpoint manifest ({exc}); remove the directory or "
                "choose another layerwise.checkpoint_dir"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CheckpointMismatchError(
                f"{path}: not a layer-by-layer calibration checkpoint of this runtime; remove the "
                "directory or choose another layerwise.checkpoint_dir"
            )
        expected = {
            "version": (VERSION, "checkpoint format version"),
            "recipe": (self.identity.recipe, "recipe fingerprint"),
            "model": (self.identity.model, "model (class, configuration, parameter shapes)"),
            "layers": (self.identity.layers, "number of decoder layers"),
        }
        for key, (value, what) in expected.items():
            if manifest.get(key) != value:
                raise CheckpointMismatchError(
                    f"{self.directory}: the checkpoint belongs to another {what} "
                    f"({manifest.get(key)!r}, this run: {value!r}); remove the directory or "
                    "choose another layerwise.checkpoint_dir"
                )
        completed = manifest.get("completed")
        if not isinstance(completed, int) or not 0 <= completed <= self.identity.layers:
            raise CheckpointMismatchError(f"{path}: invalid 'completed': {completed!r}")
        return completed, manifest.get("inputs")

    def load_layer(self, index: int) -> Any:
        path = _layer_file(self.directory, index)
        try:
            return torch.load(path, map_location=None, weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise CheckpointMismatchError(
                f"{path}: cannot read the saved state of decoder layer {index} ({exc}); remove "
                "the directory or choose another layerwise.checkpoint_dir"
            ) from None

    def save_layer(self, index: int, state: Any) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(_layer_file(self.directory, index), lambda path: torch.save(state, path))

    def commit(self, completed: int, inputs: str | None) -> None:
        """Record that the first ``completed`` layers are saved (their files are written)."""
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "recipe": self.identity.recipe,
            "model": self.identity.model,
            "layers": self.identity.layers,
            "save_every": self.identity.save_every,
            "completed": completed,
            "inputs": inputs,
        }
        text = json.dumps(manifest, indent=2) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.directory / MANIFEST, lambda path: path.write_text(text, "utf-8"))
