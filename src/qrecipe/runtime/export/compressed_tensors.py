"""(in progress)"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from torch import Tensor

from .collect import Item
from .survey import ExportPlan

NAME = "compressed-tensors"
SCHEMES = ("FP8", "NVFP4")


def tensors(items: Iterable[Item]) -> Iterator[tuple[str, Tensor]]:
    raise NotImplementedError


def quantization_config(plan: ExportPlan, present: set[str]) -> dict[str, Any]:
    raise NotImplementedError


METHOD = "compressed-tensors"


def read(tensors: dict[str, Tensor], quantization: dict[str, Any]) -> Any:
    raise NotImplementedError
