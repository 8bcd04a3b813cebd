"""Calibration text for ``qrecipe quantize``: a file of samples, or the built-in set.

A ``.jsonl`` file holds one JSON object per line with a ``text`` string; any other file holds
one sample per line (``\\n`` in a line stands for a line break, so code fits on one line).
Blank lines are skipped. Every problem names the file, line and column.
"""

from __future__ import annotations

import json
from pathlib import Path

BUILTIN = Path(__file__).with_name("calibration_samples.txt")
"""The built-in samples: prose in several languages, code, SQL, JSON and arithmetic."""


class CalibrationDataError(ValueError):
    """Calibration data that cannot be used; the message starts with ``file:line:column``."""


def load_samples(path: str | None, limit: int | None = None) -> list[str]:
    """The samples of ``path`` (the built-in set when None), at most ``limit`` of them."""
    source = BUILTIN if path is None else Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationDataError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise CalibrationDataError(f"{source}: is a directory, not a data file") from None
    except UnicodeDecodeError as exc:
        raise CalibrationDataError(f"{source}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise CalibrationDataError(f"{source}: cannot read ({exc.strerror})") from None
    if source.suffix == ".jsonl":
        samples = _jsonl(source, text)
    else:
        samples = [line.replace("\\n", "\n") for line in text.splitlines() if line.strip()]
    if not samples:
        raise CalibrationDataError(f"{source}:1:1: no samples (the file has no non-blank line)")
    return samples[:limit] if limit is not None else samples


def _jsonl(source: Path, text: str) -> list[str]:
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CalibrationDataError(
                f"{source}:{number}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        value = record.get("text") if isinstance(record, dict) else None
        if not isinstance(value, str):
            column = len(line) - len(line.lstrip()) + 1
            raise CalibrationDataError(
                f'{source}:{number}:{column}: expected an object with a "text" string'
            )
        if value.strip():
            samples.append(value)
    return samples
