"""The YAML recipes are written in: a strict subset of YAML 1.1, read alike in every language.

:func:`parse_documents` turns text into nodes (scalars with their style and tag, sequences,
mappings, aliases), each with the offset it starts at. Everything it accepts reads exactly as
PyYAML, and so ModelOpt, reads it; what PyYAML reads in a way other YAML readers do not (or
refuses itself) is refused here with a message that says what to write instead. The rules are
written down in docs/authoring.md ("The YAML recipes are written in"), and the JavaScript
package reads with the same algorithm (``js/src/core/yamlparser.js``): a change here is a
change there.

Nesting depth and the number of values are counted while reading, for block and flow
collections alike, so no text can exhaust the stack or the memory.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .errors import RecipeError, RecipeLimitError, RecipeSyntaxError
from .limits import MAX_DEPTH, MAX_DOCUMENTS, MAX_KEY_LENGTH, MAX_NODES
from .pointers import join_pointer
from .scalars import INT, ScalarValueError, construct, implicit_tag


@dataclass(eq=False, slots=True)
class Node:
    """A value as written: where it starts, and its anchor and tag if it has them."""

    start: int
    anchor: str | None = None
    tag: str | None = None


@dataclass(eq=False, slots=True)
class Scalar(Node):
    value: str = ""
    style: str = ""  # "" plain, "'" or '"' quoted, "|" or ">" block


@dataclass(eq=False, slots=True)
class Sequence(Node):
    items: list[Node] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Mapping(Node):
    keys: list[Scalar] = field(default_factory=list)
    values: list[Node] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Alias(Node):
    target: Node | None = None


@dataclass(frozen=True)
class Document:
    root: Node
    start: int


class Locator:
    """Line and column (1-based, columns counted in characters) of a text offset."""

    def __init__(self, text: str) -> None:
        self.line_starts = [0, *(match.end() for match in re.finditer("\n", text))]

    def line_start(self, offset: int) -> int:
        return self.line_starts[bisect.bisect_right(self.line_starts, offset) - 1]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1


_BLANK = " \t\n"
# What is read past the end: NUL never occurs in a checked text.
EOF = "\x00"
_FLOW_INDICATORS = ",[]{}"
# After a plain scalar's run and its spaces: what ends the scalar on this line at once (inside
# brackets also what never starts a run there: the flow indicators and '?').
_PLAIN_ENDS_BLOCK = frozenset((EOF, "\n", "#", "\t"))
_PLAIN_ENDS_FLOW = _PLAIN_ENDS_BLOCK | frozenset((*_FLOW_INDICATORS, "?"))
# A run of a plain scalar: up to a space, a line break, a tab, or ': '; inside brackets also
# up to a flow indicator or '?'.
_PLAIN_RUN_BLOCK = re.compile(r"(?:[^ \t\n:\x00]|:(?=[^ \t\n\x00]))+")
_PLAIN_RUN_FLOW = re.compile(r"(?:[^ \t\n:,\[\]{}?\x00]|:(?=[^ \t\n,\[\]{}\x00]))+")
_ANCHOR_NAME = re.compile(r"[0-9A-Za-z_-]+")
_TAG_BLOCK = re.compile(r"![^ \t\n\x00]*")
_TAG_FLOW = re.compile(r"![^ \t\n,\[\]{}\x00]*")
_QUOTED_RUN = {"'": re.compile(r"[^'\n \t\x00]+"), '"': re.compile(r'[^"\\\n \t\x00]+')}
_SPACES = re.compile(r"[ \t]*")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_ESCAPES = {
    "0": "\x00",
    "a": "\x07",
    "b": "\x08",
    "t": "\x09",
    "\t": "\x09",
    "n": "\x0a",
    "v": "\x0b",
    "f": "\x0c",
    "r": "\x0d",
    "e": "\x1b",
    " ": "\x20",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_ESCAPE_LENGTHS = {"x": 2, "u": 4, "U": 8}

_TAB_HINT = (
    "indent and separate with spaces; "
    "tabs may appear only inside quoted strings, block scalars and comments"
)
_KEY_HINT = "a key is a plain or quoted string followed by ': ' on one line"


def _end_of(pattern: re.Pattern[str], text: str, offset: int) -> int:
    """Where ``pattern``, which matches the empty string too, stops matching at ``offset``."""
    match = pattern.match(text, offset)
    assert match is not None
    return match.end()


# The text is read with this many EOF characters after its end, so that looking a few
# characters ahead never needs a bounds check.
_PAD = 8


class _Parser:
    def __init__(self, text: str, file: str, locator: Locator) -> None:
        self.n = len(text)
        self.text = text + EOF * _PAD
        self.file = file
        self.locator = locator
        self.pos = 0
        # Where the parser is, for messages: list indices, and the keys as written (turned into
        # pointer tokens only when a message needs them).
        self.path: list[Scalar | int] = []
        self.anchors: dict[str, Node] = {}
        self.values = 0

    # ------------------------------------------------------------------ errors and places
    def fail(
        self,
        offset: int,
        message: str,
        hint: str | None = None,
        *,
        error: type[RecipeError] = RecipeSyntaxError,
        at_path: bool = False,
    ) -> RecipeError:
        """An error at ``offset``; ``at_path``: reported at the collection being read."""
        line, column = self.locator.at(min(offset, self.n))
        pointer = ""
        if at_path:
            for token in self.path:
                pointer = join_pointer(
                    pointer, key_token(token) if isinstance(token, Scalar) else token
                )
        prefix = "invalid YAML: " if error is RecipeSyntaxError else ""
        return error(
            prefix + message, file=self.file, line=line, column=column, pointer=pointer, hint=hint
        )

    def blank_at(self, offset: int) -> bool:
        return offset >= self.n or self.text[offset] in _BLANK

    def column(self) -> int:
        return self.pos - self.locator.line_start(self.pos)

    def at_marker(self) -> bool:
        """At a document marker: '---' or '...' at the start of a line, then a blank."""
        offset = self.pos
        return (
            self.text.startswith(("---", "..."), offset)
            and self.blank_at(offset + 3)
            and (offset == 0 or self.text[offset - 1] == "\n")
        )

    def count(self, node: Node) -> Node:
        self.values += 1
        if self.values > MAX_NODES:
            raise self.fail(
                node.start,
                f"document has more than {MAX_NODES} values",
                "split the file into snippets",
                error=RecipeLimitError,
            )
        if node.anchor is not None:
            if node.anchor in self.anchors:  # PyYAML refuses it; others take the later one
                raise self.fail(node.start, f"the anchor {node.anchor!r} is defined twice")
            self.anchors[node.anchor] = node
        return node

    def check_depth(self, depth: int, offset: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(
                offset, f"nesting deeper than {MAX_DEPTH} levels", error=RecipeLimitError
            )

    # ------------------------------------------------------------------ white space
    def skip_spaces(self) -> None:
        text = self.text
        here = text[self.pos]
        if here == " ":
            pos = self.pos + 1
            while text[pos] == " ":
                pos += 1
            self.pos = pos
            here = text[pos]
        if here == "\t":
            raise self.fail(self.pos, "tab character outside a quoted string", _TAB_HINT)

    def skip_comment(self) -> None:
        """Skip a comment, which must start a line or follow a space."""
        if self.text[self.pos] != "#":
            return
        if self.pos > 0 and self.text[self.pos - 1] not in " \n":
            raise self.fail(self.pos, "a comment needs a space before '#'")
        end = self.text.find("\n", self.pos)
        self.pos = self.n if end < 0 else end

    def end_line(self, what: str) -> None:
        """The rest of the line may hold only spaces and a comment."""
        self.skip_spaces()
        self.skip_comment()
        if self.pos < self.n:
            if self.text[self.pos] != "\n":
                raise self.fail(self.pos, f"unexpected text after {what}")
            self.pos += 1

    def skip_blank_lines(self) -> None:
        """From a line start (or after a value), skip blank lines and comments."""
        while True:
            self.skip_spaces()
            self.skip_comment()
            if self.pos < self.n and self.text[self.pos] == "\n":
                self.pos += 1
                continue
            return

    def skip_flow_space(self) -> None:
        """Spaces, line breaks and comments inside brackets."""
        text = self.text
        pos = self.pos
        if text[pos] not in " \n#\t":
            return
        if text[pos] == " ":
            # Most often spaces only, up to the next value on the same line.
            pos += 1
            while text[pos] == " ":
                pos += 1
            if text[pos] not in "\n#\t":
                self.pos = pos
                return
        while True:
            self.skip_spaces()
            self.skip_comment()
            if self.pos < self.n and self.text[self.pos] == "\n":
                self.pos += 1
                if self.at_marker():
                    raise self.fail(self.pos, "a document marker inside brackets")
                continue
            return

    # ------------------------------------------------------------------ documents
    def documents(self) -> list[Document]:
        found: list[Document] = []
        directive = self.directives()
        first = True
        while True:
            self.skip_blank_lines()
            if self.pos >= self.n:
                if directive:
                    raise self.fail(self.pos, "a directive must be followed by '---'")
                return found
            if self.at_marker() and self.text.startswith("---", self.pos):
                self.pos += 3
                self.end_line("'---'")
                self.skip_blank_lines()
            elif self.at_marker():
                raise self.fail(self.pos, "'...' ends a document, but none was started")
            elif not first:
                raise self.fail(self.pos, "a document after '...' must start with '---'")
            elif directive:
                raise self.fail(self.pos, "a directive must be followed by '---'")
            directive = first = False
            if self.pos >= self.n or self.at_marker():
                found.append(Document(self.count(Scalar(self.pos)), self.pos))
            else:
                if self.text[self.pos] == "%" and self.column() == 0:
                    raise self.fail(self.pos, "directives must come before the first document")
                root = self.block_value(-1, 0, "document")
                found.append(Document(root, root.start))
                if self.pos < self.n and not self.at_marker():
                    raise self.fail(self.pos, self.stray_content_message())
            if len(found) > MAX_DOCUMENTS:
                line, column = self.locator.at(found[-1].start)
                raise RecipeSyntaxError(
                    f"more than {MAX_DOCUMENTS} YAML documents",
                    file=self.file,
                    line=line,
                    column=column,
                    hint="a list snippet is two documents: its imports, then '---' and the list",
                )
            if self.at_marker() and self.text.startswith("...", self.pos):
                self.pos += 3
                self.end_line("'...'")
                self.skip_blank_lines()
                if self.pos < self.n and not (
                    self.at_marker() and self.text.startswith("---", self.pos)
                ):
                    raise self.fail(self.pos, "a document after '...' must start with '---'")

    def stray_content_message(self) -> str:
        if self.text[self.pos] == "-" and self.blank_at(self.pos + 1):
            return "this list item is not inside the list above it (check the indentation)"
        return "this line is not part of the document above it (check the indentation)"

    def directives(self) -> bool:
        """Only ``%YAML 1.1`` is allowed, and only at the start of the file."""
        seen = False
        while True:
            self.skip_blank_lines()
            if self.text[self.pos] != "%":
                return seen
            end = self.text.find("\n", self.pos)
            line = self.text[self.pos : self.n if end < 0 else end]
            words = line.split("#", 1)[0].split(" ")
            words = [word for word in words if word]
            if words != ["%YAML", "1.1"] or seen:
                raise self.fail(
                    self.pos,
                    f"unsupported directive {line.split(' ', 1)[0]!r}"
                    if words[:1] != ["%YAML"] or seen
                    else f"unsupported YAML version {' '.join(words[1:])!r}",
                    "recipes are YAML 1.1; the only directive allowed is '%YAML 1.1'",
                )
            self.pos += len("%YAML")
            self.skip_spaces()
            self.pos += len("1.1")
            self.end_line("the directive")
            seen = True

    # ------------------------------------------------------------------ block context
    def block_value(self, indent: int, depth: int, after: str) -> Node:
        """The value after '- ' or 'key:' (or a document's), on this line or the next ones.

        ``indent`` is the column of the enclosing block collection (-1 for a document).
        Returns with the position at the next line's content (or at the end).
        """
        empty_at = self.pos
        anchor = tag = None
        props_start = self.pos
        same_line = props_inline = False
        first_line = True
        while True:
            self.skip_spaces()
            if self.text[self.pos] in "&!":
                if anchor is not None or tag is not None:
                    raise self.fail(self.pos, "a value's anchor and tag must be on one line")
                props_start = self.pos
                anchor, tag = self.properties(flow=False)
                props_inline = True
            if self.text[self.pos] not in ("\n", "#", EOF):
                same_line = first_line
                break
            self.end_line("the value")
            self.skip_blank_lines()
            first_line = props_inline = False
            if self.pos >= self.n or self.at_marker() or not self.continues_value(indent, after):
                if anchor is not None or tag is not None:
                    raise self.fail(props_start, "an anchor or a tag needs a value after it")
                return self.count(Scalar(empty_at))
        return self.block_node(
            indent,
            depth,
            after,
            anchor,
            tag,
            props_start,
            same_line=same_line,
            props_inline=props_inline,
        )

    def continues_value(self, indent: int, after: str) -> bool:
        """Whether the line here holds the value begun on an earlier line."""
        column = self.column()
        return column > indent or (
            after == "key" and column == indent and self.at_entry_indicator()
        )

    def at_entry_indicator(self) -> bool:
        return self.text[self.pos] == "-" and self.blank_at(self.pos + 1)

    def block_node(
        self,
        indent: int,
        depth: int,
        after: str,
        anchor: str | None,
        tag: str | None,
        props_start: int,
        *,
        same_line: bool,
        props_inline: bool,
    ) -> Node:
        """A node starting at the current position (its properties already read).

        ``same_line``: on the line of its '- ' or 'key:'; ``props_inline``: its anchor or tag
        is on the line it starts on.
        """
        has_props = anchor is not None or tag is not None
        start = props_start if has_props else self.pos
        self.check_depth(depth, start)
        column = self.column()
        here = self.text[self.pos]
        if self.at_entry_indicator():
            if same_line and after == "key":
                raise self.fail(
                    self.pos,
                    "a list cannot start on the line of its key",
                    "start the list on the next line",
                )
            if props_inline:
                raise self.fail(
                    self.pos, "a list after an anchor or a tag must start on the next line"
                )
            return self.block_sequence(column, depth, anchor, tag, start)
        if here in "?:" and self.blank_at(self.pos + 1):
            raise self.key_problem()
        key = self.try_key()
        if key is not None:
            if same_line and after == "key":
                raise self.fail(
                    key[1],
                    "mapping values are not allowed here",
                    "a mapping value cannot start on the line of its key",
                )
            if props_inline:
                raise self.fail(
                    props_start,
                    "anchors and tags cannot be put on mapping keys",
                    at_path=True,
                )
            return self.block_mapping(column, depth, anchor, tag, start, key)
        node = self.value(indent, depth, anchor, tag, start)
        if isinstance(node, Scalar) and node.style in ("|", ">"):
            self.skip_blank_lines()  # a block scalar ends at the start of a line
            return node
        self.skip_spaces()
        if self.text[self.pos] == ":":
            if isinstance(node, (Sequence, Mapping, Alias)):
                raise self.fail(
                    self.pos,
                    "mapping keys must be strings",
                    "quote the key" if not isinstance(node, Alias) else None,
                    at_path=True,
                )
            raise self.fail(
                self.pos,
                "mapping values are not allowed here",
                "a value that continues on another line cannot be a key; check the indentation",
            )
        self.end_line("the value")
        self.skip_blank_lines()
        return node

    def key_problem(self, *, flow: bool = False) -> RecipeError:
        """Why the text at the current position, where a key belongs, is not a key."""
        here = self.text[self.pos]
        if here == "?" and self.blank_at(self.pos + 1):
            return self.fail(
                self.pos,
                "mapping keys must be strings written 'key: value'; "
                "explicit keys ('? ') are not supported",
                at_path=True,
            )
        if here == ":" and (flow or self.blank_at(self.pos + 1)):  # inside { }, ':' is one
            return self.fail(self.pos, "a mapping key is missing before ':'", at_path=True)
        if here in "&!":
            return self.fail(
                self.pos, "anchors and tags cannot be put on mapping keys", at_path=True
            )
        if here == "*":
            return self.fail(self.pos, "mapping keys must be strings, not aliases", at_path=True)
        if here in "[{":
            return self.fail(
                self.pos, "mapping keys must be strings", "quote the key", at_path=True
            )
        if here == "-" and self.blank_at(self.pos + 1):
            return self.fail(self.pos, "a list item where a mapping key belongs")
        return self.fail(self.pos, "expected 'key: value' at this indentation", _KEY_HINT)

    def try_key(self) -> tuple[Scalar, int] | None:
        """A simple key here: the key and the offset of its ':' (the position is unchanged)."""
        start = self.pos
        here = self.text[start]
        if here in "'\"":
            if not self.quote_closes_on_line(start):
                return None
            scalar = self.quoted(flow=False, indent=-1)
            colon = self.pos
            self.pos = start
            while self.text[colon] == " ":
                colon += 1
            if self.text[colon] == ":" and self.blank_at(colon + 1):
                return scalar, colon
            return None
        if not self.plain_starts(start, flow=False):
            return None
        end = self.plain_line(start, flow=False)
        colon = end
        while self.text[colon] == " ":
            colon += 1
        if self.text[colon] == ":" and self.blank_at(colon + 1):
            return Scalar(start, value=self.text[start:end]), colon
        return None

    def block_mapping(
        self,
        column: int,
        depth: int,
        anchor: str | None,
        tag: str | None,
        start: int,
        first: tuple[Scalar, int],
    ) -> Mapping:
        node = Mapping(start, anchor, tag)
        self.count(node)
        key, colon = first
        while True:
            self.check_key_length(key, colon)
            self.pos = colon + 1
            self.path.append(key)
            value = self.block_value(column, depth + 1, "key")
            self.path.pop()
            node.keys.append(key)
            node.values.append(value)
            if self.pos >= self.n or self.at_marker():
                return node
            here = self.column()
            if here < column:
                return node
            if here > column:
                raise self.fail(
                    self.pos, "bad indentation: this line is indented more than the keys above it"
                )
            found = self.try_key()
            if found is None:
                raise self.key_problem()
            key, colon = found

    def quote_closes_on_line(self, start: int) -> bool:
        """Whether the quoted scalar starting at ``start`` ends on the same line."""
        quote = self.text[start]
        offset = start + 1
        while offset < self.n:
            here = self.text[offset]
            if here == "\n":
                return False
            if here == "\\" and quote == '"':
                offset += 2
                continue
            if here == quote:
                if quote == "'" and self.text[offset + 1] == "'":
                    offset += 2
                    continue
                return True
            offset += 1
        return False

    def check_key_length(self, key: Scalar, colon: int) -> None:
        if colon - key.start > MAX_KEY_LENGTH:
            raise self.fail(
                key.start,
                f"a mapping key is longer than {MAX_KEY_LENGTH} characters",
                error=RecipeLimitError,
            )

    def block_sequence(
        self, column: int, depth: int, anchor: str | None, tag: str | None, start: int
    ) -> Sequence:
        node = Sequence(start, anchor, tag)
        self.count(node)
        while True:
            self.pos += 1  # the '-'
            self.path.append(len(node.items))
            node.items.append(self.block_value(column, depth + 1, "entry"))
            self.path.pop()
            if self.pos >= self.n or self.at_marker():
                return node
            here = self.column()
            if here > column:
                raise self.fail(
                    self.pos,
                    "bad indentation: this line is indented more than the list items above it",
                )
            if here < column or not self.at_entry_indicator():
                return node

    # ------------------------------------------------------------------ node content
    def properties(self, *, flow: bool) -> tuple[str | None, str | None]:
        anchor = tag = None
        while True:
            here = self.text[self.pos]
            if here == "&":
                if anchor is not None:
                    raise self.fail(self.pos, "a value has two anchors")
                anchor = self.anchor_name(flow)
            elif here == "!":
                if tag is not None:
                    raise self.fail(self.pos, "a value has two tags")
                match = (_TAG_FLOW if flow else _TAG_BLOCK).match(self.text, self.pos)
                assert match is not None
                tag = match.group()
                self.pos = match.end()
                if not self.blank_at(self.pos):
                    raise self.fail(self.pos, "a tag must be followed by a space")
            else:
                return anchor, tag
            if flow:
                self.skip_flow_space()
            else:
                self.skip_spaces()

    def anchor_name(self, flow: bool) -> str:
        """The name after '&' or '*' (the position is at that character)."""
        match = _ANCHOR_NAME.match(self.text, self.pos + 1)
        if match is None:
            raise self.fail(
                self.pos + 1, "an anchor or alias needs a name made of letters, digits, '-' and '_'"
            )
        self.pos = match.end()
        if not self.blank_at(self.pos) and not (
            self.text[self.pos] == ":" or (flow and self.text[self.pos] in ",]}")
        ):
            raise self.fail(
                self.pos, "an anchor or alias name is made of letters, digits, '-' and '_'"
            )
        return match.group()

    def value(
        self, indent: int, depth: int, anchor: str | None, tag: str | None, start: int
    ) -> Node:
        """A scalar, alias or flow collection in block context."""
        here = self.text[self.pos]
        if here == "*":
            return self.alias(anchor, tag, flow=False)
        if here in "[{":
            return self.flow_collection(depth, anchor, tag, start)
        if here in "|>":
            node = self.block_scalar(indent, start)
        elif here in "'\"":
            node = self.quoted(flow=False, indent=indent)
        elif self.plain_starts(self.pos, flow=False):
            node = self.plain(indent)
        else:
            raise self.cannot_start()
        node.start, node.anchor, node.tag = start, anchor, tag
        return self.count(node)

    def cannot_start(self) -> RecipeError:
        here = self.text[self.pos]
        if here == "\t":
            return self.fail(self.pos, "tab character outside a quoted string", _TAB_HINT)
        if here == "%" and self.column() == 0:
            return self.fail(self.pos, "directives must come before the first document")
        if here in "-?:":
            return self.fail(self.pos, f"{here!r} followed by a space cannot start a value here")
        return self.fail(
            self.pos,
            f"character {here!r} cannot start a value",
            "quote the value to make it a string",
        )

    def alias(self, anchor: str | None, tag: str | None, *, flow: bool) -> Node:
        start = self.pos
        if anchor is not None or tag is not None:
            raise self.fail(start, "an alias cannot have an anchor or a tag")
        name = self.anchor_name(flow)
        target = self.anchors.get(name)
        if target is None:
            raise self.fail(start, f"found undefined alias {name!r}")
        return self.count(Alias(start, target=target))

    def plain_starts(self, offset: int, *, flow: bool) -> bool:
        """Whether a plain scalar can start at ``offset``."""
        here = self.text[offset]
        if here == EOF or here in _BLANK or here in ",[]{}#&*!|>'\"%@`":
            return False
        if here in "-?:":
            after = self.text[offset + 1]
            if after == EOF or after in _BLANK:
                return False
            if flow and (here in "?:" or after in _FLOW_INDICATORS):
                return False  # inside brackets ':' always separates a key from its value
        return not (flow and here == "?")

    def plain_line(self, start: int, *, flow: bool) -> int:
        """The end of a plain scalar's text on its first line (runs and the spaces between)."""
        pattern, ends = (
            (_PLAIN_RUN_FLOW, _PLAIN_ENDS_FLOW) if flow else (_PLAIN_RUN_BLOCK, _PLAIN_ENDS_BLOCK)
        )
        end = offset = start
        while True:
            match = pattern.match(self.text, offset)
            if match is None:
                return end
            end = match.end()
            offset = end
            while self.text[offset] == " ":
                offset += 1
            if self.text[offset] in ends:
                return end

    def plain(self, indent: int) -> Scalar:
        """A plain scalar in block context; it may continue on lines indented past ``indent``."""
        start = self.pos
        chunks: list[str] = []
        end = self.plain_line(start, flow=False)
        chunks.append(self.text[start:end])
        while True:
            offset = end
            while self.text[offset] == " ":
                offset += 1
            if self.text[offset] == "\t":
                raise self.fail(offset, "tab character outside a quoted string", _TAB_HINT)
            if self.text[offset] != "\n":
                break
            # Line breaks: one folds into a space, each further one is kept.
            breaks = 0
            while self.text[offset] == "\n":
                offset += 1
                breaks += 1
                self.pos = offset
                if self.at_marker():
                    break
                while self.text[offset] == " ":
                    offset += 1
            self.pos = offset
            if (
                self.at_marker()
                or self.text[offset] in (EOF, "#")
                or self.column() <= indent
                or not self.plain_continues(offset)
            ):
                break
            if self.text[offset] == "\t":
                raise self.fail(offset, "tab character outside a quoted string", _TAB_HINT)
            line_end = self.plain_line(offset, flow=False)
            chunks.append(" " if breaks == 1 else "\n" * (breaks - 1))
            chunks.append(self.text[offset:line_end])
            end = line_end
        self.pos = end
        return Scalar(start, value="".join(chunks))

    def plain_continues(self, offset: int) -> bool:
        match = _PLAIN_RUN_BLOCK.match(self.text, offset)
        return match is not None

    def quoted(self, *, flow: bool, indent: int) -> Scalar:
        """A single- or double-quoted scalar; in block context its continuation lines must be
        indented past ``indent``."""
        start = self.pos
        quote = self.text[start]
        double = quote == '"'
        self.pos += 1
        chunks: list[str] = []
        run = _QUOTED_RUN[quote]
        while True:
            match = run.match(self.text, self.pos)
            if match is not None:
                chunks.append(match.group())
                self.pos = match.end()
            here = self.text[self.pos]
            if here == quote:
                if not double and self.text[self.pos + 1] == "'":
                    chunks.append("'")
                    self.pos += 2
                    continue
                self.pos += 1
                break
            if here == "\\":
                if self.text[self.pos + 1] == "\n":
                    # An escaped line break joins the lines without a space.
                    self.pos += 1
                    self.fold_quoted(chunks, flow=flow, indent=indent, escaped=True)
                else:
                    self.escape(chunks)
            elif here in " \t":
                spaces = _SPACES.match(self.text, self.pos)
                assert spaces is not None
                self.pos = spaces.end()
                if self.text[self.pos] not in ("\n", EOF):
                    chunks.append(spaces.group())
            elif here == "\n":
                self.fold_quoted(chunks, flow=flow, indent=indent, escaped=False)
            else:
                raise self.fail(
                    self.pos, "found unexpected end of stream (while scanning a quoted scalar)"
                )
        return Scalar(start, value="".join(chunks), style=quote)

    def fold_quoted(self, chunks: list[str], *, flow: bool, indent: int, escaped: bool) -> None:
        """Line breaks inside quotes: the first folds into a space (or, escaped, into
        nothing), each further one is kept."""
        breaks = 0
        while self.text[self.pos] == "\n":
            self.pos += 1
            breaks += 1
            if self.at_marker():
                raise self.fail(self.pos, "a document marker inside a quoted string")
            spaces = _SPACES.match(self.text, self.pos)
            assert spaces is not None
            self.pos = spaces.end()
        if not flow and self.text[self.pos] not in (EOF, "\n") and self.column() <= indent:
            raise self.fail(
                self.pos,
                "a quoted string continued on another line must be indented past its key",
                "is the closing quote missing?",
            )
        if escaped:
            chunks.append("\n" * (breaks - 1))
        else:
            chunks.append(" " if breaks == 1 else "\n" * (breaks - 1))

    def escape(self, chunks: list[str]) -> None:
        """An escape sequence in a double-quoted scalar (the position is at the backslash)."""
        start = self.pos
        code = self.text[start + 1]
        if code == EOF:
            raise self.fail(
                start + 1, "found unexpected end of stream (while scanning a quoted scalar)"
            )
        if code in _ESCAPES:
            chunks.append(_ESCAPES[code])
            self.pos = start + 2
            return
        if code in _ESCAPE_LENGTHS:
            length = _ESCAPE_LENGTHS[code]
            digits = self.text[start + 2 : start + 2 + length]
            hex_match = _HEX.fullmatch(digits)
            if len(digits) < length or hex_match is None:
                raise self.fail(start, f"expected escape sequence of {length} hexadecimal numbers")
            value = int(digits, 16)
            if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
                raise self.fail(
                    start,
                    f"\\{code}{digits} is not a Unicode character",
                    "write the character itself, or \\U and its eight-digit code point",
                )
            chunks.append(chr(value))
            self.pos = start + 2 + length
            return
        raise self.fail(start, f"found unknown escape character {code!r}")

    def block_scalar(self, indent: int, start: int) -> Scalar:
        """A literal (|) or folded (>) block scalar, read as PyYAML reads it."""
        style = self.text[self.pos]
        self.pos += 1
        chomping: bool | None = None
        increment: int | None = None
        for _ in range(2):
            here = self.text[self.pos]
            if here in "+-" and chomping is None:
                chomping = here == "+"
                self.pos += 1
            elif here.isdigit() and here.isascii() and increment is None:
                if here == "0":
                    raise self.fail(self.pos, "a block scalar's indentation indicator is 1 to 9")
                increment = int(here)
                self.pos += 1
        if not self.blank_at(self.pos):
            raise self.fail(
                self.pos, "expected a comment or a line break after the block scalar indicator"
            )
        self.end_line("the block scalar indicator")
        min_indent = max(indent + 1, 1)
        breaks: list[str] = []
        if increment is None:
            # The indentation is that of the first non-empty line (or more, after blank lines).
            deepest = 0
            while True:
                while self.text[self.pos] == " ":
                    self.pos += 1
                deepest = max(deepest, self.column())
                if self.text[self.pos] != "\n":
                    break
                breaks.append("\n")
                self.pos += 1
            content_indent = max(min_indent, deepest)
        else:
            content_indent = min_indent + increment - 1
            self.block_breaks(content_indent, breaks)
        if self.text[self.pos] == "\t" and self.column() < content_indent:
            raise self.fail(
                self.pos, "tab character in the indentation of a block scalar", _TAB_HINT
            )
        chunks: list[str] = []
        line_break = ""
        while self.column() == content_indent and self.pos < self.n:
            chunks.extend(breaks)
            leading_blank = self.text[self.pos] in " \t"
            end = self.text.find("\n", self.pos)
            end = self.n if end < 0 else end
            chunks.append(self.text[self.pos : end])
            self.pos = end
            line_break = "\n" if self.pos < self.n else ""
            if self.pos < self.n:
                self.pos += 1
            breaks = []
            self.block_breaks(content_indent, breaks)
            if self.column() == content_indent and self.pos < self.n:
                if (
                    style == ">"
                    and line_break == "\n"
                    and not leading_blank
                    and self.text[self.pos] not in " \t"
                ):
                    if not breaks:
                        chunks.append(" ")
                else:
                    chunks.append(line_break)
            else:
                break
        if self.text[self.pos] == "\t" and self.column() < content_indent:
            raise self.fail(
                self.pos, "tab character in the indentation of a block scalar", _TAB_HINT
            )
        if chomping is not False:
            chunks.append(line_break)
        if chomping is True:
            chunks.extend(breaks)
        return Scalar(start, value="".join(chunks), style=style)

    def block_breaks(self, content_indent: int, breaks: list[str]) -> None:
        """Empty lines inside a block scalar, each kept as a line break."""
        while self.column() < content_indent and self.text[self.pos] == " ":
            self.pos += 1
        while self.text[self.pos] == "\n":
            breaks.append("\n")
            self.pos += 1
            while self.column() < content_indent and self.text[self.pos] == " ":
                self.pos += 1

    # ------------------------------------------------------------------ flow context
    def flow_collection(self, depth: int, anchor: str | None, tag: str | None, start: int) -> Node:
        if self.text[self.pos] == "[":
            return self.flow_sequence(depth, anchor, tag, start)
        return self.flow_mapping(depth, anchor, tag, start)

    def flow_node(self, depth: int) -> Node:
        props_start = self.pos
        anchor = tag = None
        if self.text[self.pos] in "&!":
            anchor, tag = self.properties(flow=True)
        has_props = anchor is not None or tag is not None
        start = props_start if has_props else self.pos
        if depth > MAX_DEPTH:
            self.check_depth(depth, start)
        here = self.text[self.pos]
        if here == "*":
            return self.alias(anchor, tag, flow=True)
        if here in "[{":
            return self.flow_collection(depth, anchor, tag, start)
        if here in "'\"":
            node = self.quoted(flow=True, indent=-1)
        elif here in "|>":
            raise self.fail(self.pos, "block scalars (| and >) cannot be used inside brackets")
        elif here in ",]}" or here == EOF:
            if has_props:
                raise self.fail(props_start, "an anchor or a tag needs a value after it")
            raise self.fail(
                self.pos, "expected a value" if here != EOF else "found unexpected end of stream"
            )
        elif here == "?":
            raise self.fail(
                self.pos,
                "'?' inside brackets is not supported",
                "quote values that contain '?'",
            )
        elif self.plain_starts(self.pos, flow=True):
            end = self.plain_line(self.pos, flow=True)
            node = Scalar(self.pos, value=self.text[self.pos : end])
            self.pos = end
        else:
            raise self.cannot_start()
        node.start, node.anchor, node.tag = start, anchor, tag
        return self.count(node)

    def after_flow_entry(self, closing: str, entry_end: int) -> None:
        """After an entry: ',' or the closing bracket must follow."""
        here = self.text[self.pos]
        if here == "," or here == closing:
            return
        if here == EOF:
            raise self.fail(
                self.pos, f"did not find expected ',' or '{closing}' (unclosed bracket)"
            )
        if here == "?":
            raise self.fail(
                self.pos, "'?' inside brackets is not supported", "quote values that contain '?'"
            )
        crossed_line = self.text.find("\n", entry_end, self.pos) >= 0
        if crossed_line and self.plain_starts(self.pos, flow=True):
            raise self.fail(
                self.pos,
                "a plain value inside brackets must fit on one line",
                "quote the value, or put a ',' between values",
            )
        raise self.fail(self.pos, f"did not find expected ',' or '{closing}'")

    def flow_sequence(self, depth: int, anchor: str | None, tag: str | None, start: int) -> Node:
        node = Sequence(start, anchor, tag)
        self.count(node)
        self.pos += 1
        while True:
            self.skip_flow_space()
            if self.text[self.pos] == "]":
                self.pos += 1
                return node
            if self.pos >= self.n:
                raise self.fail(self.pos, "did not find expected ',' or ']' (unclosed bracket)")
            self.path.append(len(node.items))
            item = self.flow_node(depth + 1)
            self.path.pop()
            entry_end = self.pos
            self.skip_flow_space()
            if self.text[self.pos] == ":" and (
                not (isinstance(item, Scalar) and item.style == "")
                or self.blank_at(self.pos + 1)
                or self.text[self.pos + 1] in _FLOW_INDICATORS
            ):
                raise self.fail(
                    self.pos,
                    "a 'key: value' pair inside [ ] is not supported",
                    "write the mapping in braces: [{key: value}]",
                    at_path=True,
                )
            node.items.append(item)
            self.after_flow_entry("]", entry_end)
            if self.text[self.pos] == "]":
                self.pos += 1
                return node
            self.pos += 1

    def flow_mapping(self, depth: int, anchor: str | None, tag: str | None, start: int) -> Node:
        node = Mapping(start, anchor, tag)
        self.count(node)
        self.pos += 1
        while True:
            self.skip_flow_space()
            here = self.text[self.pos]
            if here == "}":
                self.pos += 1
                return node
            if here == EOF:
                raise self.fail(self.pos, "did not find expected ',' or '}' (unclosed bracket)")
            key_start = self.pos
            if here in "'\"":
                key = self.quoted(flow=True, indent=-1)
                if "\n" in self.text[key_start : self.pos]:
                    raise self.fail(key_start, "a mapping key must fit on one line")
            elif here != "?" and self.plain_starts(self.pos, flow=True):
                end = self.plain_line(self.pos, flow=True)
                key = Scalar(key_start, value=self.text[key_start:end])
                self.pos = end
            elif here in ",]":
                raise self.fail(
                    self.pos,
                    "expected a key" if here == "," else "did not find expected ',' or '}'",
                )
            else:
                raise self.key_problem(flow=True)
            self.skip_spaces()
            if self.text[self.pos] != ":":
                raise self.fail(
                    self.pos,
                    "a key inside { } needs ': ' and a value",
                    "write {key: value}; a ':' between words needs a space after it",
                    at_path=True,
                )
            if not key.style and self.text[self.pos + 1] in _FLOW_INDICATORS:
                # PyYAML's C reader refuses '{a:}' and '{a:[1]}' (its Python reader does not).
                raise self.fail(
                    self.pos,
                    "a ':' after an unquoted key inside { } must be followed by a space",
                    at_path=True,
                )
            self.check_key_length(key, self.pos)
            self.pos += 1
            empty_at = self.pos
            self.path.append(key)
            self.skip_flow_space()
            if self.text[self.pos] in ",}":
                value: Node = self.count(Scalar(empty_at))
            else:
                value = self.flow_node(depth + 1)
            self.path.pop()
            entry_end = self.pos
            self.skip_flow_space()
            if self.text[self.pos] == ":":
                raise self.fail(self.pos, "mapping values are not allowed here")
            node.keys.append(key)
            node.values.append(value)
            self.after_flow_entry("}", entry_end)
            if self.text[self.pos] == "}":
                self.pos += 1
                return node
            self.pos += 1


def key_token(key: Scalar) -> str:
    """The key as a JSON pointer names it (integer keys are written in decimal)."""
    if key.style or key.tag is not None or implicit_tag(key.value) != INT:
        return key.value
    try:
        return str(construct(INT, key.value))
    except ScalarValueError:
        return key.value


def parse_documents(text: str, file: str, locator: Locator) -> list[Document]:
    """The documents of ``text`` (line breaks already LF, characters already checked)."""
    return _Parser(text, file, locator).documents()
