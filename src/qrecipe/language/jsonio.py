"""Strict JSON reading for flat recipes, with the position of every value.

Flat recipes are JSON (RFC 8259) and nothing else: no YAML, no NaN, no duplicate keys, no
lone surrogates, numbers within ±(2^53-1) when integral. The JavaScript package reads them
with the same algorithm (``js/src/core/jsonio.js``), so both report the same first problem
at the same place.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import DuplicateKeyError, RecipeError, RecipeLimitError, RecipeSyntaxError
from .limits import MAX_DEPTH, MAX_NODES, MAX_SAFE_INTEGER
from .pointers import join_pointer
from .yamlio import YamlDocument, decode_text
from .yamlparser import Locator

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f\ud800-\udfff]+')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_LITERALS = {"true": True, "false": False, "null": None}


class _Reader:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.n = len(text)
        self.file = file
        self.locator = Locator(text.replace("\r", " "))
        self.pos = 0
        self.values = 0

    def fail(
        self, offset: int, message: str, error: type[RecipeError] = RecipeSyntaxError
    ) -> RecipeError:
        line, column = self.locator.at(min(offset, self.n))
        prefix = "invalid JSON: " if error is RecipeSyntaxError else ""
        return error(prefix + message, file=self.file, line=line, column=column)

    def skip_whitespace(self) -> None:
        match = _WHITESPACE.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()

    def document(self) -> YamlDocument:
        self.skip_whitespace()
        doc = YamlDocument(None, start=self.locator.at(self.pos), locator=self.locator)
        doc.data = self.value(doc, "", 0)
        self.skip_whitespace()
        if self.pos < self.n:
            raise self.fail(self.pos, "extra data after the document")
        return doc

    def value(self, doc: YamlDocument, pointer: str, depth: int) -> Any:
        start = self.pos
        if depth > MAX_DEPTH:
            raise self.fail(start, f"nesting deeper than {MAX_DEPTH} levels", RecipeLimitError)
        self.values += 1
        if self.values > MAX_NODES:
            raise self.fail(start, f"document has more than {MAX_NODES} values", RecipeLimitError)
        doc.offsets[pointer] = start
        here = self.text[start] if start < self.n else ""
        if here == "{":
            return self.object(doc, pointer, depth)
        if here == "[":
            return self.array(doc, pointer, depth)
        if here == '"':
            return self.string()
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, start):
                self.pos = start + len(word)
                return literal
        match = _NUMBER.match(self.text, start)
        if match is None:
            raise self.fail(start, "expecting a value" if here else "unexpected end of data")
        self.pos = match.end()
        if match.group(1) is None and match.group(2) is None:
            integer = int(match.group())
            if abs(integer) > MAX_SAFE_INTEGER:
                raise self.fail(
                    start, f"integer {match.group()} is too large (limit ±{MAX_SAFE_INTEGER})"
                )
            return integer
        number = float(match.group())
        if not math.isfinite(number):
            raise self.fail(start, f"{match.group()} is not a finite number")
        return number + 0.0  # -0.0 reads as 0, as in JavaScript

    def object(self, doc: YamlDocument, pointer: str, depth: int) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        self.skip_whitespace()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return result
        while True:
            key_start = self.pos
            if not self.text.startswith('"', key_start):
                raise self.fail(key_start, "expecting a property name enclosed in double quotes")
            key = self.string()
            child = join_pointer(pointer, key)
            if key in result:
                line, column = self.locator.at(key_start)
                first_line = self.locator.at(doc.key_offsets[child])[0]
                raise DuplicateKeyError(
                    f"duplicate key {key!r} (first given on line {first_line})",
                    file=self.file,
                    line=line,
                    column=column,
                    pointer=child,
                    hint="JSON objects must not repeat a key; the later value would silently win",
                )
            doc.key_offsets[child] = key_start
            self.skip_whitespace()
            if not self.text.startswith(":", self.pos):
                raise self.fail(self.pos, "expecting ':' delimiter")
            self.pos += 1
            self.skip_whitespace()
            result[key] = self.value(doc, child, depth + 1)
            self.skip_whitespace()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                self.skip_whitespace()
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return result
            raise self.fail(self.pos, "expecting ',' delimiter")

    def array(self, doc: YamlDocument, pointer: str, depth: int) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        self.skip_whitespace()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return result
        while True:
            result.append(self.value(doc, join_pointer(pointer, len(result)), depth + 1))
            self.skip_whitespace()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                self.skip_whitespace()
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return result
            raise self.fail(self.pos, "expecting ',' delimiter")

    def string(self) -> str:
        start = self.pos
        self.pos += 1
        chunks: list[str] = []
        while True:
            match = _STRING_RUN.match(self.text, self.pos)
            if match is not None:
                chunks.append(match.group())
                self.pos = match.end()
            here = self.text[self.pos] if self.pos < self.n else ""
            if here == '"':
                self.pos += 1
                return "".join(chunks)
            if here == "\\":
                chunks.append(self.escape())
            elif not here:
                raise self.fail(start, "unterminated string")
            else:
                raise self.fail(self.pos, f"invalid character U+{ord(here):04X} in a string")

    def escape(self) -> str:
        start = self.pos
        code = self.text[start + 1] if start + 1 < self.n else ""
        if code in _ESCAPES:
            self.pos += 2
            return _ESCAPES[code]
        if code != "u" or _HEX4.fullmatch(self.text, start + 2, start + 6) is None:
            raise self.fail(start, "invalid escape")
        unit = int(self.text[start + 2 : start + 6], 16)
        self.pos = start + 6
        if 0xDC00 <= unit <= 0xDFFF:
            raise self.fail(start, "a lone surrogate escape is not a character")
        if 0xD800 <= unit <= 0xDBFF:
            low = self.text[self.pos : self.pos + 6]
            if not (low.startswith("\\u") and _HEX4.fullmatch(low, 2)):
                raise self.fail(start, "a lone surrogate escape is not a character")
            second = int(low[2:], 16)
            if not 0xDC00 <= second <= 0xDFFF:
                raise self.fail(start, "a lone surrogate escape is not a character")
            self.pos += 6
            return chr(0x10000 + ((unit - 0xD800) << 10) + (second - 0xDC00))
        return chr(unit)


def parse_json(raw: str | bytes, file: str) -> YamlDocument:
    """Parse one JSON document with the positions of its values and keys."""
    return _Reader(decode_text(raw, file), file).document()
