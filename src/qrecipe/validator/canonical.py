"""Canonical bytes (RFC 8785), the fingerprint, and the stable pretty form.

Both output forms sort keys by UTF-16 code units and format numbers the RFC 8785 way, so the
pretty form is as reproducible as the canonical one, across machines and languages.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

FINGERPRINT_PREFIX = "sha256:"


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of ``value``."""
    return rfc8785.dumps(value)


def _utf16_key(key: str) -> list[int]:
    encoded = key.encode("utf-16-be")
    return [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]


def pretty_json(value: Any, indent: int = 2) -> str:
    """Indented JSON with RFC 8785 key order and number formatting, ending in a newline."""
    lines: list[str] = []

    def write(node: Any, level: int) -> str:
        pad = " " * (indent * (level + 1))
        end = " " * (indent * level)
        if isinstance(node, dict):
            if not node:
                return "{}"
            items = [
                f"{pad}{canonical_bytes(k).decode()}: {write(node[k], level + 1)}"
                for k in sorted(node, key=_utf16_key)
            ]
            return "{\n" + ",\n".join(items) + "\n" + end + "}"
        if isinstance(node, list):
            if not node:
                return "[]"
            return "[\n" + ",\n".join(pad + write(v, level + 1) for v in node) + "\n" + end + "]"
        return canonical_bytes(node).decode()

    lines.append(write(value, 0))
    return "\n".join(lines) + "\n"


def semantic_content(flat: dict[str, Any]) -> dict[str, Any]:
    """The part of a flat recipe that its fingerprint covers."""
    return {"quantize": flat["quantize"], "recipe_type": flat["metadata"]["recipe_type"]}


def fingerprint(flat: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical bytes of the recipe's semantic content."""
    digest = hashlib.sha256(canonical_bytes(semantic_content(flat))).hexdigest()
    return FINGERPRINT_PREFIX + digest
