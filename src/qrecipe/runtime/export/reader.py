"""Reading safetensors shards one tensor at a time, each tensor in its own memory.

The ``safetensors`` package reads a whole shard into one buffer and hands out views of it, so
the shard stays in memory while any of its tensors lives: a tensor that loading converts
(INT4 codes repacked, experts stacked) would keep its original bytes alive beside the new
ones. Here each tensor is read from the file straight into a tensor of its own, so whatever
loading replaces is freed, and memory holds the model's tensors and nothing else.

The format: an 8-byte little-endian header length, a JSON header giving each tensor's dtype,
shape and byte range (relative to the end of the header), then the data, little-endian.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "I64": torch.int64,
    "U64": torch.uint64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}


class ShardError(ValueError):
    """A file that is not a safetensors file this reader understands; the message says why."""


def read_header(path: Path) -> tuple[int, dict[str, Any]]:
    """(offset of the data, the header's tensor entries) of a safetensors file."""
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) != 8:
            raise ShardError(f"{path}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        try:
            header = json.loads(file.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ShardError(f"{path}: unreadable safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ShardError(f"{path}: the safetensors header is not an object")
    header.pop("__metadata__", None)
    return 8 + length, header


def iter_tensors(path: Path) -> Iterator[tuple[str, Tensor]]:
    """Every tensor of a safetensors file, in file order, each in memory of its own."""
    offset, header = read_header(path)
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    with path.open("rb") as file:
        for name, entry in entries:
            yield name, _read(file, path, name, offset, entry)


def _read(file: Any, path: Path, name: str, offset: int, entry: dict[str, Any]) -> Tensor:
    dtype = DTYPES.get(entry.get("dtype", ""))
    if dtype is None:
        raise ShardError(f"{path}: {name} has dtype {entry.get('dtype')!r}, not one PyTorch reads")
    begin, end = entry["data_offsets"]
    shape = [int(size) for size in entry["shape"]]
    data = torch.empty(end - begin, dtype=torch.uint8)
    file.seek(offset + begin)
    if end > begin and file.readinto(data.numpy()) != end - begin:
        raise ShardError(f"{path}: {name} ends past the end of the file")
    tensor = data.view(dtype)
    if sys.byteorder == "big" and tensor.element_size() > 1:  # pragma: no cover - big-endian
        tensor = tensor.view(torch.uint8).reshape(-1, tensor.element_size()).flip(-1)
        tensor = tensor.contiguous().view(dtype)
    return tensor.reshape(shape)


__all__ = ["DTYPES", "ShardError", "iter_tensors", "read_header"]
