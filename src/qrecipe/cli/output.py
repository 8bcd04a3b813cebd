"""Writing a command's document to stdout or to a file named with ``-o``."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import UsageError


def write_output(data: bytes, output: str | None) -> None:
    """Write ``data`` to ``output`` (stdout when ``None``); an unwritable file is a usage error."""
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        Path(output).write_bytes(data)
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror}") from None
