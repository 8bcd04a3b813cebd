"""Tensor memory of a piece of work, read from PyTorch's profiler (shared by the benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def tensor_memory_peak(work: Callable[[], Any]) -> tuple[int, Any]:
    """(the most tensor bytes allocated at once while ``work`` runs, above what was before; its
    result).

    The profiler records every allocation and release of the CPU allocator; tensors that existed
    before (a model's weights) count as the starting point.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        result = work()
    changes = sorted(
        (event.time_range.start, event.self_cpu_memory_usage)
        for event in profiler.events()
        if event.self_cpu_memory_usage
    )
    live = peak = 0
    for _, change in changes:
        live += change
        peak = max(peak, live)
    return peak, result
