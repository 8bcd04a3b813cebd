"""JSON pointers (RFC 6901): how every message says where a value is."""

from __future__ import annotations


def escape_pointer_token(token: str | int) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(pointer: str, token: str | int) -> str:
    if isinstance(token, int) or ("~" not in token and "/" not in token):
        return f"{pointer}/{token}"
    return f"{pointer}/{escape_pointer_token(token)}"
