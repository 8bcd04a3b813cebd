"""Differences between two JSON documents, one line per JSON pointer where they differ.

``qrecipe check-flat`` shows how a committed flat file differs from what its source resolves
to today, and ``qrecipe diff`` how two recipes differ; both read the same lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..language import canonical_bytes, join_pointer

MAX_VALUE_WIDTH = 60


def short(value: Any) -> str:
    """``value`` as canonical JSON, cut to :data:`MAX_VALUE_WIDTH` characters."""
    text = canonical_bytes(value).decode("utf-8")
    return text if len(text) <= MAX_VALUE_WIDTH else text[: MAX_VALUE_WIDTH - 3] + "..."


def differences(before: Any, after: Any, pointer: str = "") -> Iterator[str]:
    """One line per JSON pointer where ``before`` and ``after`` differ, in key and index order."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys()):
            where = join_pointer(pointer, key)
            if key not in after:
                yield f"removed {where} (was {short(before[key])})"
            elif key not in before:
                yield f"added {where}: {short(after[key])}"
            else:
                yield from differences(before[key], after[key], where)
    elif isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            where = join_pointer(pointer, index)
            if index >= len(after):
                yield f"removed {where} (was {short(before[index])})"
            elif index >= len(before):
                yield f"added {where}: {short(after[index])}"
            else:
                yield from differences(before[index], after[index], where)
    elif canonical_bytes(before) != canonical_bytes(after):
        yield f"changed {pointer or '/'}: {short(before)} -> {short(after)}"
