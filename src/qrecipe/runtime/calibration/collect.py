"""Activation statistics from the forward passes of ``forward_loop``: collection and reduction.

While ``forward_loop(model)`` runs, every quantizer being calibrated hands each tensor it sees
to a collector instead of quantizing it, and every other quantizer passes tensors through, so
that each layer sees the full-precision model (as in the reference). A collector reduces the
per-batch statistic (:func:`~qrecipe.runtime.kernels.reduce_amax`) over batches with
:func:`combine`, the element-wise maximum, which does not depend on the order of batches.

**Across processes.** When ``apply`` runs on every rank of a ``torch.distributed`` job, each
rank's ``forward_loop`` sees its own shard of the calibration data, and every statistic is
reduced across ranks before it is used, so that all ranks end with the same quantizers:
amax by maximum (:func:`reduce_amaxes`; the maximum over ranks of the maxima over batches is the
maximum over all batches, so the result equals one process calibrating on every shard, bit for
bit), sums and counts by sum (:func:`all_reduce_sum`). The algorithms say which of their
statistics are reduced how. Nothing is reduced when the recipe sets ``distributed_sync:
false`` or no process group is initialised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..kernels import reduce_amax
from ..quantizer import Collector, TensorQuantizer, iter_stages
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


@contextlib.contextmanager
def collectors_installed(
    placed: Placed, collectors: Mapping[int, Collector], *, others_pass: bool = True
) -> Iterator[None]:
    """Route the tensors of the stages in ``collectors`` (by ``id``) to their collectors.

    Every other stage passes tensors through unchanged (``others_pass``), or quantizes as
    usual (the search passes of AWQ, which run the model with its calibrated quantizers).
    """
    stages = [stage for _, quantizer in placed for stage in iter_stages(quantizer)]
    try:
        for stage in stages:
            collector = collectors.get(id(stage))
            if collector is None and others_pass:
                collector = pass_through
            stage._collector = collector
        yield
    finally:
        for stage in stages:
            stage._collector = None


def run_forward(model: nn.Module, forward_loop: ForwardLoop, progress: bool, desc: str) -> int:
    """``forward_loop(model)`` without gradients; returns the number of forward calls."""
    bar = tqdm(desc=desc, unit="batch", disable=not progress)
    batches = 0

    def count_batch(module: nn.Module, args: Any, output: Any) -> None:
        nonlocal batches
        batches += 1
        bar.update(1)

    handle = model.register_forward_hook(count_batch)
    try:
        with torch.no_grad():
            forward_loop(model)
    finally:
        handle.remove()
        bar.close()
    return batches


def collect_amax(
    model: nn.Module,
    placed: Placed,
    targets: Stages,
    forward_loop: ForwardLoop,
    progress: bool,
    extra: Mapping[int, Collector] | None = None,
) -> tuple[int, list[torch.Tensor | None]]:
    """Run ``forward_loop(model)`` collecting the amax of every target stage.

    ``extra``: more collectors by stage ``id`` (statistics other algorithms gather in the same
    pass). Returns the number of batches (forward calls of ``model``) and, for each target in
    order, its amax, or None when no data reached it.
    """
    collectors: dict[int, Collector] = {
        id(stage): MaxCollector(slot.name) for slot, stage in targets
    }
    collectors.update(extra or {})
    with collectors_installed(placed, collectors):
        batches = run_forward(model, forward_loop, progress, "calibrating activations")
    amaxes: list[torch.Tensor | None] = []
    for _, stage in targets:
        collector = collectors[id(stage)]
        amaxes.append(collector.amax if isinstance(collector, MaxCollector) else None)
    return batches, amaxes


# -- across processes ---------------------------------------------------------------------------


def process_count() -> int:
    """The number of processes of the initialised torch.distributed job (1 without one)."""
    distributed = torch.distributed
    if not distributed.is_available() or not distributed.is_initialized():
        return 1
    return int(distributed.get_world_size())


def reduce_amaxes(amaxes: list[torch.Tensor | None], sync: bool) -> list[torch.Tensor | None]:
    """Each amax as the maximum over the ranks (None only where no rank saw data).

    Ranks that saw no data for a quantizer take part with zeros of the shape the others found,
    so that every rank makes the same collective calls in the same order.
    """
    if not sync or process_count() == 1:
        return amaxes
    distributed = torch.distributed
    shapes = [None if amax is None else tuple(amax.shape) for amax in amaxes]
    gathered: list[Any] = [None] * process_count()
    distributed.all_gather_object(gathered, shapes)
    reduced: list[torch.Tensor | None] = []
    for index, amax in enumerate(amaxes):
        seen = [rank_shapes[index] for rank_shapes in gathered if rank_shapes[index] is not None]
        if not seen:
            reduced.append(None)
            continue
        if any(shape != seen[0] for shape in seen):
            raise RuntimeError(
                f"the calibration statistic has different shapes on different ranks ({seen}); "
                "a static per-block or per-token format needs inputs of one shape"
            )
        local = amax if amax is not None else torch.zeros(seen[0], dtype=torch.float32)
        local = local.float().contiguous().clone()
        distributed.all_reduce(local, op=distributed.ReduceOp.MAX)
        reduced.append(local)
    return reduced


def all_reduce_sum(tensor: torch.Tensor, sync: bool) -> torch.Tensor:
    """``tensor`` summed over the ranks (a new tensor; the input itself when there is one)."""
    if not sync or process_count() == 1:
        return tensor
    total = tensor.contiguous().clone()
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return total


def all_reduce_max(tensor: torch.Tensor, sync: bool) -> torch.Tensor:
    """``tensor`` as the element-wise maximum over the ranks."""
    if not sync or process_count() == 1:
        return tensor
    largest = tensor.contiguous().clone()
    torch.distributed.all_reduce(largest, op=torch.distributed.ReduceOp.MAX)
    return largest
