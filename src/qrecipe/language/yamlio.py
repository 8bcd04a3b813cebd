"""Safe YAML loading that remembers where every value came from.

PyYAML composes a node graph (with line/column marks) and we build plain JSON-compatible data
from it ourselves, instead of letting PyYAML construct objects, because we need to:

* record the line and column of every value and key, keyed by JSON pointer, for error messages;
* reject what a recipe must not contain: duplicate keys, non-string keys (integer keys are
  allowed and become strings, since block sizes are written ``-1: 16``), merge keys, dates,
  binary, custom tags, ``.inf``/``.nan``;
* bound the work a hostile file can cause: file size, nesting depth, and the number of nodes
  visited, which is what stops alias-expansion ("billion laughs") bombs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import (
    Diagnostic,
    DuplicateKeyError,
    RecipeError,
    RecipeLimitError,
    RecipeSyntaxError,
)

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_DOCUMENTS = 2
MAX_SAFE_INTEGER = 2**53 - 1

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}

Position = tuple[int, int]


def escape_pointer_token(token: str | int) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(pointer: str, token: str | int) -> str:
    if isinstance(token, int) or ("~" not in token and "/" not in token):
        return f"{pointer}/{token}"
    return f"{pointer}/{escape_pointer_token(token)}"


@dataclass
class YamlDocument:
    """One YAML document as plain data plus the positions of its values and keys."""

    data: Any
    positions: dict[str, Position] = field(default_factory=dict)
    key_positions: dict[str, Position] = field(default_factory=dict)
    start: Position = (1, 1)

    def position(self, pointer: str, *, key: bool = False) -> Position | None:
        """Line and column (1-based) of the value at ``pointer`` (or of its key).

        Falls back to the nearest enclosing value that has a position.
        """
        if key and pointer in self.key_positions:
            return self.key_positions[pointer]
        while True:
            if pointer in self.positions:
                return self.positions[pointer]
            if not pointer:
                return self.start
            pointer = pointer.rsplit("/", 1)[0]


class _Builder:
    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.visited = 0

    def _mark(self, node: yaml.Node) -> Position:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _fail(
        self,
        cls: type[RecipeError],
        node: yaml.Node,
        message: str,
        pointer: str,
        hint: str | None = None,
    ) -> None:
        line, column = self._mark(node)
        raise cls(Diagnostic(message, self.file, line, column, pointer, code=cls.code, hint=hint))

    def build(self, node: yaml.Node, doc: YamlDocument, pointer: str = "", depth: int = 0) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            self._fail(
                RecipeLimitError,
                node,
                f"document expands to more than {MAX_NODES} values (alias expansion limit)",
                pointer,
                "YAML anchors and aliases that multiply each other are refused",
            )
        if depth > MAX_DEPTH:
            self._fail(RecipeLimitError, node, f"nesting deeper than {MAX_DEPTH} levels", pointer)
        doc.positions.setdefault(pointer, self._mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, pointer)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self._fail(RecipeSyntaxError, node, f"unsupported YAML tag {node.tag!r}", pointer)
            return [
                self.build(item, doc, join_pointer(pointer, index), depth + 1)
                for index, item in enumerate(node.value)
            ]
        if node.tag != "tag:yaml.org,2002:map":
            self._fail(RecipeSyntaxError, node, f"unsupported YAML tag {node.tag!r}", pointer)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, pointer)
            child = join_pointer(pointer, key)
            if key in result:
                first_line = doc.key_positions[child][0]
                self._fail(
                    DuplicateKeyError,
                    key_node,
                    f"duplicate key {key!r} (first given on line {first_line})",
                    child,
                    "YAML mappings must not repeat a key; the later value would silently win",
                )
            doc.key_positions[child] = self._mark(key_node)
            result[key] = self.build(value_node, doc, child, depth + 1)
        return result

    def _key(self, node: yaml.Node, pointer: str) -> str:
        if node.tag == _MERGE:
            self._fail(
                RecipeSyntaxError,
                node,
                "YAML merge keys (<<) are not supported",
                pointer,
                "compose mappings with $import instead",
            )
        if not isinstance(node, yaml.ScalarNode):
            self._fail(RecipeSyntaxError, node, "mapping keys must be strings", pointer)
        if node.tag == _STR:
            return str(node.value)
        if node.tag == _INT:
            # Integer keys name axes in block_sizes / bias; JSON spells them as strings.
            return str(self.loader.construct_object(node))
        value = node.value if node.tag != _NULL else "null"
        self._fail(
            RecipeSyntaxError,
            node,
            f"mapping keys must be strings, got {value!r} ({node.tag.rsplit(':', 1)[-1]})",
            pointer,
            "quote the key",
        )
        raise AssertionError  # unreachable: _fail raises

    def _scalar(self, node: yaml.ScalarNode, pointer: str) -> Any:
        if node.tag not in _SCALAR_TAGS:
            kind = node.tag.rsplit(":", 1)[-1]
            self._fail(
                RecipeSyntaxError,
                node,
                f"unsupported YAML value of type {kind!r}: {node.value!r}",
                pointer,
                "recipes hold only strings, numbers, booleans and null; quote the value to make it "
                "a string",
            )
        value = self.loader.construct_object(node)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
            self._fail(
                RecipeSyntaxError,
                node,
                f"integer {node.value} is too large for JSON (limit ±{MAX_SAFE_INTEGER})",
                pointer,
            )
        if isinstance(value, float) and not math.isfinite(value):
            self._fail(
                RecipeSyntaxError,
                node,
                f"{node.value!r} is not a finite number",
                pointer,
                "JSON has no infinity or NaN",
            )
        return value


def parse_yaml(text: str | bytes, file: str) -> list[YamlDocument]:
    """Parse every document of a YAML (or JSON) text, safely.

    Raises :class:`RecipeSyntaxError`, :class:`DuplicateKeyError` or :class:`RecipeLimitError`.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise RecipeLimitError(
                f"file is {len(text)} bytes, more than the {MAX_FILE_BYTES}-byte limit", file=file
            )
        raw = text
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise RecipeSyntaxError(
                Diagnostic(
                    f"file is not valid UTF-8 (byte {exc.start})",
                    file,
                    line,
                    column,
                    code=RecipeSyntaxError.code,
                )
            ) from None
    elif len(text) > MAX_FILE_BYTES:
        raise RecipeLimitError(
            f"text is {len(text)} characters, more than the {MAX_FILE_BYTES} limit", file=file
        )
    _check_flow_depth(text, file)
    loader = _Loader(text)
    documents: list[YamlDocument] = []
    try:
        builder = _Builder(loader, file)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if len(documents) == MAX_DOCUMENTS:
                line, column = node.start_mark.line + 1, node.start_mark.column + 1
                raise RecipeSyntaxError(
                    Diagnostic(
                        f"more than {MAX_DOCUMENTS} YAML documents",
                        file,
                        line,
                        column,
                        code=RecipeSyntaxError.code,
                        hint=(
                            "a list snippet is two documents: its imports, then '---' and the list"
                        ),
                    )
                )
            doc = YamlDocument(None, start=(node.start_mark.line + 1, node.start_mark.column + 1))
            doc.data = builder.build(node, doc)
            documents.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        raise RecipeSyntaxError(
            Diagnostic(
                f"invalid YAML: {problem}",
                file,
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
                code=RecipeSyntaxError.code,
            )
        ) from None
    except yaml.reader.ReaderError as exc:
        # The C reader counts UTF-8 bytes; lines and columns are counted in characters.
        offset = len(text.encode("utf-8")[: exc.position].decode("utf-8", errors="ignore"))
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        character = exc.character
        code_point = ord(character) if isinstance(character, str) else character
        raise RecipeSyntaxError(
            Diagnostic(
                f"invalid YAML: {exc.reason} (U+{code_point:04X})",
                file,
                line,
                column,
                code=RecipeSyntaxError.code,
                hint="control characters must be escaped inside a double-quoted string",
            )
        ) from None
    except yaml.YAMLError as exc:
        raise RecipeSyntaxError(f"invalid YAML: {exc}", file=file) from None
    except RecursionError:
        raise RecipeLimitError(f"nesting deeper than {MAX_DEPTH} levels", file=file) from None
    finally:
        loader.dispose()
    return documents


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse nesting deeper than the limit before the C composer sees it.

    The C composer recurses once per nesting level without a guard, so a file of many
    thousands of ``[`` would crash the interpreter; parse events arrive flat, so counting
    them is safe. Only texts with enough brackets to be that deep pay for the extra pass.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
                    raise RecipeLimitError(
                        Diagnostic(
                            f"nesting deeper than {MAX_DEPTH} levels",
                            file,
                            line,
                            column,
                            code=RecipeLimitError.code,
                        )
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # the real parse reports syntax errors with their positions
