"""Generate the CLI and schema reference pages from their single sources of truth.

The CLI page is built from ``qrecipe.cli.build_parser()`` (the same parser the
command uses), the schema page from the published JSON Schemas. Both are produced at build
time by the MkDocs hook in ``docs/gen/hooks.py`` and never stored in git.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from qrecipe.cli import build_parser
from qrecipe.schema import load_schema, schema_id

# --------------------------------------------------------------------------- CLI reference


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_text(parser: argparse.ArgumentParser) -> str:
    """``--help`` output at a fixed width, so the page does not depend on the terminal."""
    parser.formatter_class = _fixed_width(parser.formatter_class)
    return parser.format_help().rstrip()


def _fixed_width(formatter: Any) -> Any:
    class Fixed(formatter):  # type: ignore[misc,valid-type]
        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=88, max_help_position=30)

    return Fixed


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| Argument | Meaning | Default |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            name = ", ".join(f"`{o}`" for o in action.option_strings)
            if action.nargs != 0 and (action.metavar or not action.choices):
                name += f" `{action.metavar or action.dest.upper()}`"
        else:
            name = f"`{action.metavar or action.dest}`"
        meaning = (action.help or "").replace("|", "\\|")
        if action.choices and not isinstance(action, argparse._VersionAction):
            meaning += " (one of " + ", ".join(f"`{c}`" for c in action.choices) + ")"
        if isinstance(action, argparse._AppendAction) and "repeatable" not in meaning:
            meaning += " (repeatable)"
        default = action.default
        shown = (
            ""
            if default in (None, [], False, argparse.SUPPRESS) or not action.option_strings
            else f"`{default}`"
        )
        rows.append(f"| {name} | {meaning} | {shown} |")
    return rows


def cli_reference() -> str:
    """The CLI reference page (Markdown)."""
    parser = build_parser()
    commands = _subparsers(parser)
    out = [
        "# CLI reference",
        "",
        "<!-- Generated at build time from qrecipe.cli.build_parser(); edit the parser, not this "
        "page. -->",
        "",
        f"{parser.description}",
        "",
        "Commands: " + ", ".join(f"[`{name}`](#qrecipe-{name})" for name in commands) + ".",
        "",
        "## `qrecipe`",
        "",
        "```text",
        _help_text(parser),
        "```",
        "",
    ]
    for name, sub in commands.items():
        out += [
            f"## `qrecipe {name}` {{#qrecipe-{name}}}",
            "",
            sub.description or "",
            "",
            *_options_table(sub),
            "",
            "```text",
            _help_text(sub),
            "```",
            "",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------- schema reference

_CONSTRAINTS = (
    ("const", "value"),
    ("pattern", "pattern"),
    ("minimum", "minimum"),
    ("exclusiveMinimum", "greater than"),
    ("maximum", "maximum"),
    ("exclusiveMaximum", "less than"),
    ("minLength", "minimum length"),
    ("maxLength", "maximum length"),
    ("minItems", "minimum items"),
    ("maxItems", "maximum items"),
    ("minProperties", "minimum keys"),
    ("maxProperties", "maximum keys"),
)


def _js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _code(value: Any) -> str:
    text = _js(value)
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _anchor(schema: str, definition: str) -> str:
    return f"{schema}-{definition}".replace("_", "-").lower()


class _SchemaPage:
    def __init__(self, name: str) -> None:
        self.name = name
        self.root = load_schema(name)

    def link(self, ref: str) -> str:
        if ref.startswith("#/$defs/"):
            target = ref.rsplit("/", 1)[-1]
            return f"[`{target}`](#{_anchor(self.name, target)})"
        for other in ("recipe", "flat"):
            prefix = schema_id(other) + "#/$defs/"
            if ref.startswith(prefix):
                target = ref[len(prefix) :]
                return f"[`{target}`](#{_anchor(other, target)})"
        return f"`{ref}`"

    def types(self, node: dict[str, Any]) -> list[str]:
        found: list[str] = []
        kind = node.get("type")
        if isinstance(kind, str):
            found.append(kind)
        elif isinstance(kind, list):
            found.extend(kind)
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            if "$ref" in branch:
                found.append(self.link(branch["$ref"]))
            else:
                found.extend(self.types(branch))
        return list(dict.fromkeys(found))

    def facts(self, node: dict[str, Any]) -> list[str]:
        """Bullet lines for one schema node (not its sub-properties)."""
        lines: list[str] = []
        types = self.types(node)
        if types:
            lines.append("Type: " + ", ".join(t if t.startswith("[") else f"`{t}`" for t in types))
        if "$ref" in node:
            lines.append("Schema: " + self.link(node["$ref"]))
        if "default" in node:
            lines.append("Default: " + _code(node["default"]))
        enums = list(node.get("enum", []))
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            enums += [v for v in branch.get("enum", []) if v not in enums]
        if enums:
            lines.append("Allowed values: " + ", ".join(_code(v) for v in enums))
        for keyword, words in _CONSTRAINTS:
            if keyword in node:
                lines.append(f"{words[0].upper()}{words[1:]}: {_code(node[keyword])}")
        names = node.get("propertyNames")
        if isinstance(names, dict) and "pattern" in names:
            lines.append("Key pattern: " + _code(names["pattern"]))
        if node.get("required"):
            lines.append("Required keys: " + ", ".join(f"`{k}`" for k in node["required"]))
        if node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False:
            lines.append("Other keys: not allowed")
        items = node.get("items")
        if isinstance(items, dict) and items:
            if "$ref" in items:
                lines.append("Items: " + self.link(items["$ref"]))
            else:
                item_types = self.types(items)
                if item_types:
                    lines.append("Items: " + ", ".join(f"`{t}`" for t in item_types))
        prefix = node.get("prefixItems")
        if prefix:
            lines.append("Items in order: " + ", ".join(", ".join(self.types(p)) for p in prefix))
        if node.get("examples"):
            lines.append("Examples: " + ", ".join(_code(v) for v in node["examples"]))
        if node.get("$comment"):
            lines.append("Note: " + str(node["$comment"]))
        return lines

    def table(self, node: dict[str, Any]) -> Iterator[str]:
        """The facts of a node as a two-column table (kept apart from lists in descriptions)."""
        facts = self.facts(node)
        if facts:
            yield "| Keyword | Value |"
            yield "| --- | --- |"
            for label, _, value in (fact.partition(": ") for fact in facts):
                yield f"| {label} | {value} |"
            yield ""

    def describe(self, node: dict[str, Any]) -> list[str]:
        text = node.get("markdownDescription") or node.get("description")
        return [str(text), ""] if text else []

    def properties(self, node: dict[str, Any], prefix: str, level: int) -> Iterator[str]:
        for key, sub in node.get("properties", {}).items():
            yield from self.property(f"{prefix}{key}", sub, level)
        for pattern, sub in node.get("patternProperties", {}).items():
            yield from self.property(f"{prefix}<key matching {pattern}>", sub, level)

    def property(self, name: str, node: Any, level: int) -> Iterator[str]:
        heading = "#" * level
        if not isinstance(node, dict):
            yield f"{heading} `{name}`"
            yield ""
            yield "| Keyword | Value |"
            yield "| --- | --- |"
            yield f"| Schema | {_code(node)} |"
            yield ""
            return
        title = node.get("title")
        yield f"{heading} `{name}`" + (f": {title}" if title else "")
        yield ""
        yield from self.describe(node)
        yield from self.table(node)
        yield from self.properties(node, f"{name}.", min(level + 1, 6))
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            yield from self.properties(branch, f"{name}.", min(level + 1, 6))
        yield from self.conditional(node, name, min(level + 1, 6))

    def conditional(self, node: dict[str, Any], prefix: str, level: int) -> Iterator[str]:
        """``allOf`` if/then branches that add keys for one value of a selector key."""
        for branch in node.get("allOf", []):
            condition = branch.get("if", {}).get("properties", {})
            then = branch.get("then", {})
            if not condition or not then.get("properties"):
                continue
            key, test = next(iter(condition.items()))
            value = test.get("const", test.get("enum"))
            yield f"{'#' * level} Options when `{key}` is {_code(value)}"
            yield ""
            yield from self.properties(then, f"{prefix}." if prefix else "", min(level + 1, 6))

    def dispatch(self) -> Iterator[str]:
        """The top-level if/then/else chain: which definition a document is checked against."""
        node: Any = self.root
        rows = []
        while isinstance(node, dict) and "if" in node:
            condition = node["if"]
            words = []
            kind = condition.get("type")
            if kind:
                words.append("a list" if kind == "array" else "a mapping")
            alternatives = [
                " and ".join(f"`{k}`" for k in c.get("required", []))
                for c in condition.get("anyOf", [])
            ]
            if alternatives:
                words.append("with " + " or ".join(alternatives))
            if condition.get("required") and not alternatives:
                words.append("with only " + ", ".join(f"`{k}`" for k in condition["required"]))
            rows.append((" ".join(words), node["then"]["$ref"]))
            node = node.get("else")
        if rows:
            yield "A document is checked against the first definition whose shape it has:"
            yield ""
            yield "| The document is | Checked as |"
            yield "| --- | --- |"
            for words, ref in rows:
                yield f"| {words} | {self.link(ref)} |"
            if isinstance(node, dict) and "$ref" in node:
                yield f"| anything else | {self.link(node['$ref'])} |"
            yield ""

    def render(self) -> Iterator[str]:
        root = self.root
        yield f"## {root.get('title', self.name)} {{#{self.name}-schema}}"
        yield ""
        yield f"`$id`: `{root['$id']}` (print it with `qrecipe schema {self.name}`)."
        yield ""
        yield from self.describe(root)
        yield from self.dispatch()
        if root.get("properties"):
            yield "### Top level"
            yield ""
            yield from self.table(root)
            yield from self.properties(root, "", 4)
        for name, node in root.get("$defs", {}).items():
            title = node.get("title")
            yield (
                f"### `{name}`"
                + (f": {title}" if title else "")
                + f" {{#{_anchor(self.name, name)}}}"
            )
            yield ""
            yield from self.describe(node)
            yield from self.table(node)
            yield from self.properties(node, "", 4)
            yield from self.conditional(node, "", 4)


def schema_reference() -> str:
    """The schema reference page (Markdown), generated from both published schemas."""
    out = [
        "# Schema reference",
        "",
        "<!-- Generated at build time from src/qrecipe/schema/*.schema.json; edit the schemas, not "
        "this page. -->",
        "",
        "qrecipe publishes two JSON Schemas (Draft 2020-12): the **recipe** schema for what you",
        "write (recipes and snippets, with `imports` and `$import`) and the **flat** schema for",
        "what `qrecipe resolve` produces (see [the flat form](flat-form.md)). Everything on this",
        "page is read from the schemas themselves.",
        "",
    ]
    for name in ("recipe", "flat"):
        out += list(_SchemaPage(name).render())
    return "\n".join(out)
