"""Timing the phases of applying a recipe (reported as ``QuantReport.timings``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


@contextlib.contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Record the seconds the block takes as ``timings[phase]`` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = time.perf_counter() - started
