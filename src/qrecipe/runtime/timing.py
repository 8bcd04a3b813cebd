"""Timing the phases of applying a recipe (reported as ``QuantReport.timings``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


@contextlib.contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[phase]`` (also when it raises).

    A phase that runs several times (once per decoder layer) adds up.
    """
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started
