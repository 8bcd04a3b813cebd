"""Reading files from disk without surprises.

Every path here may be anything a user or a recipe names: missing, a directory, a FIFO, a
symbolic-link loop, a name longer than the system allows, a file of gigabytes. None of that
may raise anything but a diagnostic, block, or read more than the size limit: files are
opened without blocking, must be regular files, and are checked against the limit before a
byte is read. The JavaScript package's file host (``js/src/node.js``) does the same.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from .errors import RecipeLimitError, RecipeNotFoundError
from .limits import MAX_FILE_BYTES

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

Kind = Literal["file", "dir"]


def file_kind(path: str | os.PathLike[str]) -> Kind | None:
    """``"file"`` for a regular file, ``"dir"`` for a directory, else None (whatever the reason)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else None


def real_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with symbolic links resolved as far as they can be."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return Path(os.path.abspath(path))


def expand_user(text: str) -> str:
    """``~`` and ``~/...`` name the home directory (nothing else does, in every language)."""
    if text == "~" or text.startswith("~/"):
        return os.path.expanduser("~") + text[1:]
    return text


def read_file(path: Path, display: str, what: str = "") -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``, or a diagnostic.

    ``display`` names the file in messages; ``what`` is put before it ("flat recipe").
    """
    name = f"{what} {display}" if what else display
    try:
        descriptor = os.open(path, os.O_RDONLY | _NONBLOCK)
    except (OSError, ValueError) as exc:
        raise RecipeNotFoundError(f"cannot read {name}: {_reason(exc)}", file=display) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            reason = "Is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise RecipeNotFoundError(f"cannot read {name}: {reason}", file=display)
        if info.st_size > MAX_FILE_BYTES:
            raise RecipeLimitError(
                f"file is {info.st_size} bytes, more than the {MAX_FILE_BYTES}-byte limit",
                file=display,
            )
        chunks = []
        remaining = MAX_FILE_BYTES + 1  # one more, to notice a file that grew meanwhile
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise RecipeNotFoundError(f"cannot read {name}: {_reason(exc)}", file=display) from None
    finally:
        os.close(descriptor)


def _reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "invalid file name"
