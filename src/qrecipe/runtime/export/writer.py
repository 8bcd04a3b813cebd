"""Writing a checkpoint directory: sharded safetensors, config, and the files that travel along.

Shards are named as ``transformers`` names them (``model.safetensors``, or
``model-00001-of-00003.safetensors`` with ``model.safetensors.index.json``), so every loader of
Hugging Face checkpoints finds them. Tokenizer files, the generation config and the other small
files of the source model directory are copied unchanged; the flat recipe is written as
``recipe.flat.json``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from ...language import CHECKPOINT_RECIPE, pretty_json

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
# Files of a source model directory that the export replaces or that hold the old weights.
NOT_COPIED = re.compile(
    r"(\.safetensors|\.bin|\.pt|\.pth|\.ckpt|\.h5|\.msgpack|\.onnx|\.index\.json|\.gguf)$"
    r"|^(config\.json|hf_quant_config\.json|recipe\.flat\.json|qrecipe-report\.json"
    r"|qrecipe-amax\.json)$"
    r"|^(onnx|openvino|\.git|\.cache)$"
)
_UNITS = {"": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size: int | str) -> int:
    """Bytes from ``5GB``, ``500MB``, ``2GiB`` or a plain number."""
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"shard size must be positive, not {size}")
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]I?B)?\s*", size.upper())
    if match is None:
        raise ValueError(f"shard size {size!r} is not a size such as 5GB, 500MB or 2GiB")
    value = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if value < 1:
        raise ValueError(f"shard size must be positive, not {size!r}")
    return int(value)


def nbytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def shard(tensors: Mapping[str, Tensor], max_bytes: int) -> list[dict[str, Tensor]]:
    """Tensors split, in order, into shards of at most ``max_bytes`` (a larger tensor alone)."""
    shards: list[dict[str, Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        length = nbytes(tensor)
        if shards[-1] and size + length > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += length
    return shards


def write_tensors(
    directory: Path,
    tensors: Mapping[str, Tensor],
    max_shard_size: int | str,
    metadata: Mapping[str, str],
    progress: bool,
) -> list[str]:
    """Write the tensors as safetensors shards (and an index when there are several)."""
    shards = shard(tensors, parse_size(max_shard_size))
    count = len(shards)
    names = (
        [WEIGHTS_NAME]
        if count == 1
        else [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
    )
    header = {"format": "pt", **metadata}
    for name, part in tqdm(
        list(zip(names, shards, strict=True)), desc="writing", unit="shard", disable=not progress
    ):
        save_file(dict(part), str(directory / name), metadata=header)
    if count > 1:
        index = {
            "metadata": {"total_size": sum(nbytes(t) for t in tensors.values())},
            "weight_map": {
                key: name for name, part in zip(names, shards, strict=True) for key in part
            },
        }
        (directory / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    return names


def copy_source_files(source: Path, directory: Path) -> list[str]:
    """Copy the tokenizer, generation config and other small files of a model directory."""
    copied = []
    for path in sorted(source.iterdir()):
        if NOT_COPIED.search(path.name):
            continue
        target = directory / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target)
        copied.append(path.name)
    return copied


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=4) + "\n")


def write_recipe(directory: Path, flat: Mapping[str, Any]) -> None:
    """The flat recipe, so that ``qrecipe fingerprint DIR`` names the recipe that made it."""
    (directory / CHECKPOINT_RECIPE).write_text(pretty_json(dict(flat)))


def remove_stale_shards(directory: Path, keep: Iterable[str]) -> None:
    """Delete weight files an earlier export left in the directory (another shard count)."""
    kept = set(keep)
    for path in directory.glob("model*.safetensors"):
        if path.name not in kept:
            path.unlink()
    if len(kept) == 1 and (directory / INDEX_NAME).exists():
        (directory / INDEX_NAME).unlink()
