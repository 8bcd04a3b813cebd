"""Safe YAML loading that remembers where every value came from.

A file is decoded (UTF-8, at most :data:`MAX_FILE_BYTES`), its characters are checked, it is
read by :mod:`.yamlparser` (the YAML recipes are written in, the same in JavaScript) and the
nodes are built into plain JSON-compatible data here, so that we can:

* record the line and column of every value and key, keyed by JSON pointer, for error messages;
* reject what a recipe must not contain: duplicate keys, non-string keys (integer keys are
  allowed and become strings, since block sizes are written ``-1: 16``), merge keys, dates,
  binary, custom tags, ``.inf``/``.nan``;
* bound the work a hostile file can cause: file size, nesting depth, and the number of values
  built, which is what stops alias-expansion ("billion laughs") bombs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import DuplicateKeyError, RecipeError, RecipeLimitError, RecipeSyntaxError
from .limits import MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES, MAX_NODES, MAX_SAFE_INTEGER
from .pointers import escape_pointer_token, join_pointer
from .scalars import (
    BOOL,
    FLOAT,
    INT,
    MERGE,
    NULL,
    STR,
    TAG,
    ScalarValueError,
    construct,
    implicit_tag,
)
from .yamlparser import Alias, Locator, Mapping, Node, Scalar, Sequence, parse_documents

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENTS",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_SAFE_INTEGER",
    "Position",
    "YamlDocument",
    "decode_text",
    "escape_pointer_token",
    "join_pointer",
    "parse_yaml",
]

Position = tuple[int, int]

_SCALAR_TAGS = {"!!str": STR, "!!int": INT, "!!float": FLOAT, "!!bool": BOOL, "!!null": NULL}
_SEQ_TAG = "!!seq"
_MAP_TAG = "!!map"

# Characters a recipe may not contain: control characters other than tab and line feed, a
# carriage return not followed by a line feed, the Unicode line breaks YAML 1.1 counts and
# JSON does not (NEL, U+2028, U+2029), a byte order mark after the start, and non-characters.
_REFUSED = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    "|\r(?!\n)"
)
_LINE_BREAK_NAMES = {
    "\x85": "U+0085 (next line)",
    "\u2028": "U+2028 (line separator)",
    "\u2029": "U+2029 (paragraph separator)",
}


@dataclass
class YamlDocument:
    """One YAML (or JSON) document as plain data plus where its values and keys are.

    Where a value is, is kept as a text offset and turned into a line and column only when
    asked: files are read far more often than they have a problem to report.
    """

    data: Any
    offsets: dict[str, int] = field(default_factory=dict)
    key_offsets: dict[str, int] = field(default_factory=dict)
    start: Position = (1, 1)
    locator: Locator | None = field(default=None, repr=False)

    @property
    def positions(self) -> dict[str, Position]:
        """Line and column of every value, by JSON pointer."""
        return {pointer: self._at(offset) for pointer, offset in self.offsets.items()}

    @property
    def key_positions(self) -> dict[str, Position]:
        """Line and column of every key, by the JSON pointer of its value."""
        return {pointer: self._at(offset) for pointer, offset in self.key_offsets.items()}

    def _at(self, offset: int) -> Position:
        assert self.locator is not None
        return self.locator.at(offset)

    def position(self, pointer: str, *, key: bool = False) -> Position | None:
        """Line and column (1-based) of the value at ``pointer`` (or of its key).

        Falls back to the nearest enclosing value that has a position.
        """
        if key and pointer in self.key_offsets:
            return self._at(self.key_offsets[pointer])
        while True:
            if pointer in self.offsets:
                return self._at(self.offsets[pointer])
            if not pointer:
                return self.start
            pointer = pointer.rsplit("/", 1)[0]


def decode_text(raw: str | bytes, file: str) -> str:
    """The text of a file (UTF-8, an optional byte order mark), within the size limit."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_FILE_BYTES:
            raise RecipeLimitError(
                f"file is {len(raw)} bytes, more than the {MAX_FILE_BYTES}-byte limit", file=file
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise RecipeSyntaxError(
                f"file is not valid UTF-8 (byte {exc.start})", file=file, line=line, column=column
            ) from None
    else:
        if len(raw) > MAX_FILE_BYTES:
            raise RecipeLimitError(
                f"text is {len(raw)} characters, more than the {MAX_FILE_BYTES} limit", file=file
            )
        text = raw
    return text[1:] if text.startswith("\ufeff") else text


def check_characters(text: str, file: str) -> str:
    """Refuse characters recipes may not hold; the text with CRLF line ends read as LF."""
    refused = _REFUSED.search(text)
    if refused is not None:
        offset = refused.start()
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        character = refused.group()
        if character == "\r":
            message, hint = (
                "a carriage return must be followed by a line feed",
                "save the file with LF (or CRLF) line ends",
            )
        elif character in _LINE_BREAK_NAMES:
            message, hint = (
                f"{_LINE_BREAK_NAMES[character]} is not allowed: YAML 1.1 reads it as a line "
                "break, JSON and YAML 1.2 do not",
                "use an ordinary line break, or write it as an escape inside a double-quoted "
                "string (\\N, \\L, \\P)",
            )
        elif character == "\ufeff":
            message, hint = (
                "a byte order mark (U+FEFF) is only allowed at the start of a file",
                None,
            )
        else:
            message, hint = (
                f"control characters are not allowed (U+{ord(character):04X})",
                "control characters must be escaped inside a double-quoted string",
            )
        raise RecipeSyntaxError(
            f"invalid YAML: {message}", file=file, line=line, column=column, hint=hint
        )
    return text.replace("\r\n", "\n") if "\r" in text else text


class _Builder:
    """Plain data from nodes, with positions, checking keys, tags, values and limits."""

    def __init__(self, file: str, locator: Locator) -> None:
        self.file = file
        self.locator = locator
        self.visited = 0

    def fail(
        self,
        error: type[RecipeError],
        node: Node,
        message: str,
        pointer: str,
        hint: str | None = None,
    ) -> RecipeError:
        line, column = self.locator.at(node.start)
        return error(message, file=self.file, line=line, column=column, pointer=pointer, hint=hint)

    def build(self, node: Node, doc: YamlDocument, pointer: str = "", depth: int = 0) -> Any:
        while isinstance(node, Alias):
            assert node.target is not None
            node = node.target
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.fail(
                RecipeLimitError,
                node,
                f"document expands to more than {MAX_NODES} values (alias expansion limit)",
                pointer,
                "YAML anchors and aliases that multiply each other are refused",
            )
        if depth > MAX_DEPTH:
            raise self.fail(
                RecipeLimitError, node, f"nesting deeper than {MAX_DEPTH} levels", pointer
            )
        doc.offsets.setdefault(pointer, node.start)
        if isinstance(node, Scalar):
            return self.scalar(node, pointer)
        if isinstance(node, Sequence):
            self.check_collection_tag(node, _SEQ_TAG, pointer)
            return [
                self.build(item, doc, join_pointer(pointer, index), depth + 1)
                for index, item in enumerate(node.items)
            ]
        assert isinstance(node, Mapping)
        self.check_collection_tag(node, _MAP_TAG, pointer)
        result: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            key = self.key(key_node, pointer)
            child = join_pointer(pointer, key)
            if key in result:
                first_line = self.locator.at(doc.key_offsets[child])[0]
                raise self.fail(
                    DuplicateKeyError,
                    key_node,
                    f"duplicate key {key!r} (first given on line {first_line})",
                    child,
                    "YAML mappings must not repeat a key; the later value would silently win",
                )
            doc.key_offsets[child] = key_node.start
            result[key] = self.build(value_node, doc, child, depth + 1)
        return result

    def check_collection_tag(self, node: Node, allowed: str, pointer: str) -> None:
        if node.tag is not None and node.tag != allowed:
            raise self.fail(
                RecipeSyntaxError, node, f"unsupported YAML tag {tag_name(node.tag)!r}", pointer
            )

    def key(self, node: Scalar, pointer: str) -> str:
        if node.style:
            return node.value
        tag = implicit_tag(node.value)
        if tag == MERGE:
            raise self.fail(
                RecipeSyntaxError,
                node,
                "YAML merge keys (<<) are not supported",
                pointer,
                "compose mappings with $import instead",
            )
        if tag == STR:
            return node.value
        if tag == INT:
            # Integer keys name axes in block_sizes / bias; JSON spells them as strings.
            return str(self.construct(node, INT, pointer))
        value = node.value if tag != NULL else "null"
        raise self.fail(
            RecipeSyntaxError,
            node,
            f"mapping keys must be strings, got {value!r} ({tag.rsplit(':', 1)[-1]})",
            pointer,
            "quote the key",
        )

    def scalar(self, node: Scalar, pointer: str) -> Any:
        if node.tag is None:
            tag = implicit_tag(node.value) if not node.style else STR
        elif node.tag in _SCALAR_TAGS:
            tag = _SCALAR_TAGS[node.tag]
            if tag != STR and implicit_tag(node.value) != tag:
                raise self.fail(
                    RecipeSyntaxError,
                    node,
                    f"{node.value!r} is not a value of type {node.tag}",
                    pointer,
                    "a tag may only confirm what the value already is; drop the tag",
                )
        else:
            tag = tag_name(node.tag)
        if tag not in (STR, INT, FLOAT, BOOL, NULL):
            raise self.fail(
                RecipeSyntaxError,
                node,
                f"unsupported YAML value of type {tag.rsplit(':', 1)[-1]!r}: {node.value!r}",
                pointer,
                "recipes hold only strings, numbers, booleans and null; "
                "quote the value to make it a string",
            )
        return self.construct(node, tag, pointer)

    def construct(self, node: Scalar, tag: str, pointer: str) -> Any:
        try:
            return construct(tag, node.value)
        except ScalarValueError as exc:
            raise self.fail(
                RecipeSyntaxError,
                node,
                f"invalid YAML: {exc}",
                pointer,
                "quote the value to make it a string" if tag == INT else "JSON has no such number",
            ) from None


def tag_name(tag: str) -> str:
    """The full name of a tag as written (``!!set`` is ``tag:yaml.org,2002:set``)."""
    if tag.startswith("!!"):
        return TAG + tag[2:]
    if tag.startswith("!<") and tag.endswith(">"):
        return tag[2:-1]
    return tag


def parse_yaml(text: str | bytes, file: str) -> list[YamlDocument]:
    """Parse every document of a YAML text, safely.

    Raises :class:`RecipeSyntaxError`, :class:`DuplicateKeyError` or :class:`RecipeLimitError`.
    """
    text = check_characters(decode_text(text, file), file)
    locator = Locator(text)
    parsed = parse_documents(text, file, locator)
    documents: list[YamlDocument] = []
    builder = _Builder(file, locator)
    for document in parsed:
        doc = YamlDocument(None, start=locator.at(document.start), locator=locator)
        doc.data = builder.build(document.root, doc)
        documents.append(doc)
    return documents
