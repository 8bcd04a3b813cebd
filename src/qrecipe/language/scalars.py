"""What a plain YAML scalar means: the YAML 1.1 types recipes are read with.

ModelOpt reads recipes with PyYAML, so ``yes``/``on`` are booleans, ``0x1f``, ``010`` and
``1_000`` are integers and ``1e-5`` (no dot) is a string. These are PyYAML's resolution rules,
written out so that the JavaScript package (``js/src/core/scalars.js``) applies the very same
ones; each rule is pinned by a conformance vector.
"""

from __future__ import annotations

import math
import re

from .limits import MAX_SAFE_INTEGER

TAG = "tag:yaml.org,2002:"
STR = TAG + "str"
INT = TAG + "int"
FLOAT = TAG + "float"
BOOL = TAG + "bool"
NULL = TAG + "null"
MERGE = TAG + "merge"
TIMESTAMP = TAG + "timestamp"
VALUE = TAG + "value"

# The implicit types of plain scalars, in the order they are tried.
_IMPLICIT = (
    (
        BOOL,
        re.compile(r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"),
    ),
    (
        FLOAT,
        re.compile(
            r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
            r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
            r"|[-+]?\.(?:inf|Inf|INF)"
            r"|\.(?:nan|NaN|NAN)"
        ),
    ),
    (
        INT,
        re.compile(
            r"[-+]?0b[0-1_]+"
            r"|[-+]?0[0-7_]+"
            r"|[-+]?(?:0|[1-9][0-9_]*)"
            r"|[-+]?0x[0-9a-fA-F_]+"
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
        ),
    ),
    (MERGE, re.compile(r"<<")),
    (NULL, re.compile(r"~|null|Null|NULL|")),
    (
        TIMESTAMP,
        re.compile(
            r"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
            r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
            r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
            r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?"
        ),
    ),
    (VALUE, re.compile(r"=")),
)

_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}


# Only texts starting with one of these can be anything but a string.
_TYPED_FIRST = frozenset("yYnNtTfFoO0123456789+-.~<=")


def implicit_tag(text: str) -> str:
    """The type of a plain scalar written ``text``."""
    if text and text[0] not in _TYPED_FIRST:
        return STR
    for tag, pattern in _IMPLICIT:
        if pattern.fullmatch(text):
            return tag
    return STR


class ScalarValueError(ValueError):
    """A scalar that looks like a number (or boolean) but cannot be read as one."""


def construct(tag: str, text: str) -> str | int | float | bool | None:
    """The value of a scalar of type ``tag`` written ``text`` (its text must have that type).

    Raises :class:`ScalarValueError` for text of that type that names no value: an integer
    without digits (``0x_``), or a number JSON cannot hold (beyond ±(2^53-1), infinite, NaN).
    """
    if tag == NULL:
        return None
    if tag == BOOL:
        return _BOOLS[text.lower()]
    if tag == INT:
        return _construct_int(text)
    if tag == FLOAT:
        return _construct_float(text)
    return text


def _construct_int(text: str) -> int:
    value = text.replace("_", "")
    sign = -1 if value[:1] == "-" else 1
    if value[:1] in "+-":
        value = value[1:]
    if value == "0":
        return 0
    if value.startswith("0b"):
        digits, base = value[2:], 2
    elif value.startswith("0x"):
        digits, base = value[2:], 16
    elif value.startswith("0"):
        digits, base = value[1:], 8
    elif ":" in value:
        result = 0
        for part in value.split(":"):
            result = result * 60 + int(part)
        return _safe(sign * result, text)
    else:
        digits, base = value, 10
    if not digits:
        raise ScalarValueError(f"{text!r} looks like an integer but has no digits")
    return _safe(sign * int(digits, base), text)


def _safe(value: int, text: str) -> int:
    if abs(value) > MAX_SAFE_INTEGER:
        raise ScalarValueError(f"integer {text} is too large for JSON (limit ±{MAX_SAFE_INTEGER})")
    return value


def _construct_float(text: str) -> float:
    value = text.replace("_", "").lower()
    sign = -1.0 if value[:1] == "-" else 1.0
    if value[:1] in "+-":
        value = value[1:]
    if value in (".inf", ".nan"):
        raise ScalarValueError(f"{text!r} is not a finite number")
    if ":" in value:
        # Least significant part first, as PyYAML adds them.
        result, base = 0.0, 1.0
        for part in reversed(value.split(":")):
            result += float(part) * base
            base *= 60
        number = sign * result
    else:
        number = sign * float(value)
    if not math.isfinite(number):
        raise ScalarValueError(f"{text!r} is not a finite number")
    return number + 0.0  # -0.0 reads as 0, as in JavaScript
