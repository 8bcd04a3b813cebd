"""Canonical bytes (RFC 8785), the fingerprint, and the stable pretty form.

Both output forms sort keys by UTF-16 code units and format numbers the RFC 8785 way, so the
pretty form is as reproducible as the canonical one, across machines and languages.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

FINGERPRINT_PREFIX = "sha256:"


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of ``value``."""
    if _json_module_is_canonical(value):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return canonical_text(value).encode("utf-8")


def _json_module_is_canonical(value: Any) -> bool:
    """Whether :func:`json.dumps` already writes ``value`` the RFC 8785 way.

    It does unless a float prints differently from ECMAScript (exponents, integral values),
    an integer is beyond the exact range, or a key holds characters above U+FFFF (where code
    point order and UTF-16 order differ). Checking is much cheaper than serialising in Python.
    """
    if isinstance(value, dict):
        return all(
            (key.isascii() or all(ord(ch) <= 0xFFFF for ch in key))
            and _json_module_is_canonical(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return all(_json_module_is_canonical(item) for item in value)
    if isinstance(value, float):
        text = repr(value)
        return "e" not in text and not text.endswith(".0") and text not in ("nan", "inf", "-inf")
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= _MAX_SAFE_INTEGER
    return isinstance(value, str) or value is None or isinstance(value, bool)


def canonical_text(value: Any) -> str:
    """RFC 8785 text of ``value``.

    Strings, integers, booleans and null are written by :mod:`json`, whose escaping matches
    RFC 8785 exactly; only non-integral floats go through :mod:`rfc8785`, which implements the
    ECMAScript number formatting the standard requires. This is several times faster than
    serialising everything through :mod:`rfc8785`, and a property test checks both agree.
    """
    if isinstance(value, dict):
        parts = [f"{_string(k)}:{canonical_text(value[k])}" for k in sorted_keys(value)]
        return "{" + ",".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_text(v) for v in value) + "]"
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            # RFC 8785 numbers are IEEE doubles; larger integers cannot round-trip.
            return rfc8785.dumps(value).decode()
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
            return str(int(value)) if value != 0 else "0"
        return rfc8785.dumps(value).decode()
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


_MAX_SAFE_INTEGER = 2**53 - 1


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _utf16_key(key: str) -> list[int]:
    encoded = key.encode("utf-16-be")
    return [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]


def sorted_keys(mapping: dict[str, Any]) -> list[str]:
    """Keys in RFC 8785 order: by UTF-16 code units (code points differ only above U+FFFF)."""
    keys = list(mapping)
    if any(ord(ch) > 0xFFFF for key in keys for ch in key):
        return sorted(keys, key=_utf16_key)
    return sorted(keys)


def pretty_json(value: Any, indent: int = 2) -> str:
    """Indented JSON with RFC 8785 key order and number formatting, ending in a newline."""

    def write(node: Any, level: int) -> str:
        pad = " " * (indent * (level + 1))
        end = " " * (indent * level)
        if isinstance(node, dict):
            if not node:
                return "{}"
            items = [
                f"{pad}{canonical_bytes(k).decode()}: {write(node[k], level + 1)}"
                for k in sorted_keys(node)
            ]
            return "{\n" + ",\n".join(items) + "\n" + end + "}"
        if isinstance(node, list):
            if not node:
                return "[]"
            return "[\n" + ",\n".join(pad + write(v, level + 1) for v in node) + "\n" + end + "]"
        return canonical_bytes(node).decode()

    return write(value, 0) + "\n"


def semantic_content(flat: dict[str, Any]) -> dict[str, Any]:
    """The part of a flat recipe that its fingerprint covers."""
    return {"quantize": flat["quantize"], "recipe_type": flat["metadata"]["recipe_type"]}


def fingerprint(flat: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical bytes of the recipe's semantic content."""
    digest = hashlib.sha256(canonical_bytes(semantic_content(flat))).hexdigest()
    return FINGERPRINT_PREFIX + digest
