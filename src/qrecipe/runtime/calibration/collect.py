"""Activation statistics from the forward passes of ``forward_loop``: collection and reduction.

While ``forward_loop(model)`` runs, every quantizer being calibrated hands each tensor it sees
to a collector instead of quantizing it, and every other quantizer passes tensors through, so
that each layer sees the full-precision model (as in the reference). A collector reduces the
per-batch statistic (:func:`~qrecipe.runtime.kernels.reduce_amax`) over batches with
:func:`combine`, the element-wise maximum, which does not depend on the order of batches.

A reduction across processes (``distributed_sync``: an all-reduce with MAX over ranks) belongs
here too: applied with the same :func:`combine` to each collected amax after the loop, before
:func:`collect_amax` returns them. This runtime calibrates in one process.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..kernels import reduce_amax
from ..quantizer import TensorQuantizer, iter_stages
from .base import ForwardLoop, Placed, Stages


def combine(running: torch.Tensor | None, statistic: torch.Tensor, name: str) -> torch.Tensor:
    """The running amax after one more statistic (the first one as it is)."""
    if running is None:
        return statistic
    if statistic.shape != running.shape:
        raise RuntimeError(
            f"{name}: the calibration statistic changed shape between batches "
            f"({tuple(running.shape)} then {tuple(statistic.shape)}); a static per-block "
            "or per-token format needs inputs of one shape"
        )
    return torch.maximum(running, statistic.to(running.device))


class MaxCollector:
    """Running maximum of the calibration statistic of every tensor a quantizer sees."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.amax: torch.Tensor | None = None

    def __call__(self, quantizer: TensorQuantizer, x: torch.Tensor) -> None:
        statistic = reduce_amax(x.detach(), quantizer.fmt).float()
        self.amax = combine(self.amax, statistic, self.name)


def pass_through(quantizer: TensorQuantizer, x: torch.Tensor) -> None:
    """Collector of quantizers that take no data: they stay out of the way while calibrating."""


def collect_amax(
    model: nn.Module,
    placed: Placed,
    targets: Stages,
    forward_loop: ForwardLoop,
    progress: bool,
) -> tuple[int, list[torch.Tensor | None]]:
    """Run ``forward_loop(model)`` collecting the amax of every target stage.

    Returns the number of batches (forward calls of ``model``) and, for each target in order,
    its amax, or None when no data reached it.
    """
    collectors = {id(stage): MaxCollector(slot.name) for slot, stage in targets}
    stages = [stage for _, quantizer in placed for stage in iter_stages(quantizer)]
    bar = tqdm(desc="calibrating activations", unit="batch", disable=not progress)
    batches = 0

    def count_batch(module: nn.Module, args: Any, output: Any) -> None:
        nonlocal batches
        batches += 1
        bar.update(1)

    handle = model.register_forward_hook(count_batch)
    try:
        for stage in stages:
            stage._collector = collectors.get(id(stage), pass_through)
        with torch.no_grad():
            forward_loop(model)
    finally:
        handle.remove()
        bar.close()
        for stage in stages:
            stage._collector = None
    return batches, [collectors[id(stage)].amax for _, stage in targets]
