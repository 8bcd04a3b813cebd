"""Validate documents against the published schemas and explain failures in plain words.

The schemas are plain Draft 2020-12 and are used unchanged. Valid documents, by far the
common case, are accepted by ``jsonschema-rs`` (compiled, two orders of magnitude faster, a
required dependency); a document it rejects is validated again by ``jsonschema``, whose
errors this module turns into :class:`Diagnostic` objects with a line, a column, a JSON
pointer and, for misspelt keys and values, a "did you mean" suggestion. ``jsonschema`` is
only imported when a document is invalid, which keeps the command line quick to start.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from ..schema import SCHEMA_NAMES, load_schema
from .errors import Diagnostic, SchemaValidationError
from .yamlio import YamlDocument, escape_pointer_token, join_pointer

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

import jsonschema_rs

_JSON_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _standalone(schema: str, definition: str | None) -> dict[str, Any]:
    """A schema document for one definition that carries the definitions it refers to."""
    root = load_schema(schema)
    if definition is None:
        return root
    if definition not in root["$defs"]:
        raise KeyError(f"schema {schema!r} has no definition {definition!r}")
    return {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{definition}"}


@cache
def _fast_validator(schema: str, definition: str | None) -> Any:
    return jsonschema_rs.validator_for(_standalone(schema, definition))


def is_valid(instance: Any, schema: str = "recipe", definition: str | None = None) -> bool:
    """Whether ``instance`` is valid, decided by the compiled validator."""
    return bool(_fast_validator(schema, definition).is_valid(instance))


@cache
def _registry() -> Registry:
    from referencing import Registry, Resource

    resources = [
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in SCHEMA_NAMES
    ]
    return Registry().with_resources(resources)


@cache
def validator_for(schema: str, definition: str | None = None) -> Draft202012Validator:
    """A cached validator for a whole schema or one of its ``$defs``."""
    root = load_schema(schema)
    if definition is None:
        return _ecma_validator_class()(root, registry=_registry())
    if definition not in root["$defs"]:
        raise KeyError(f"schema {schema!r} has no definition {definition!r}")
    sub = {"$ref": f"{root['$id']}#/$defs/{definition}"}
    return _ecma_validator_class()(sub, registry=_registry())


@cache
def _ecma_validator_class() -> type[Draft202012Validator]:
    """Draft 2020-12 with ECMA-262 end anchors.

    JSON Schema patterns are ECMA-262 regular expressions, where ``$`` matches only at the
    very end; in Python it also matches before a final newline, which would let ``"e4m3\\n"``
    through. Patterns here end in ``$`` only as an anchor, which ``\\Z`` states exactly.
    """
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, regex: str, instance: Any, schema: Any) -> Iterator[Any]:
        if not validator.is_type(instance, "string"):
            return
        anchored = (
            regex[:-1] + r"\Z" if regex.endswith("$") and not regex.endswith("\\$") else regex
        )
        if not re.search(anchored, instance):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    # The stubs leave ``extend`` unannotated; it returns a validator class like the one given.
    extended = cast(Any, validators).extend(Draft202012Validator, {"pattern": pattern})
    return cast("type[Draft202012Validator]", extended)


def show(value: Any) -> str:
    """A value as it would be written in JSON, so messages read the same in every language."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def describe_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + escape_pointer_token(p) for p in path)


def suggest(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {show(matches[0])}?" if matches else None


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """Replace an anyOf/oneOf failure by the errors of the branch meant for this value's type."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield error
        return
    by_branch: dict[str | int, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(sub.schema_path[0], []).append(sub)
    fitting = [
        subs
        for subs in by_branch.values()
        if not any(s.validator in ("type", "const", "enum") and not s.relative_path for s in subs)
    ]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _leaf_errors(sub)
        return
    yield error


def _allowed_keys(schema: dict[str, Any], instance: Any, root: dict[str, Any]) -> list[str]:
    """Keys a mapping may hold at this place (for an algorithm: those of its method)."""
    keys = list(schema.get("properties", {}))
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        target = root["$defs"].get(ref.rsplit("/", 1)[-1], {})
        keys.extend(_allowed_keys(target, instance, root))
    method = instance.get("method") if isinstance(instance, dict) else None
    for branch in schema.get("allOf", []):
        condition = branch.get("if", {})
        method_condition = condition.get("properties", {}).get("method", {})
        required = condition.get("required", [])
        if isinstance(instance, dict) and not all(key in instance for key in required):
            continue
        if "const" in method_condition and method_condition["const"] != method:
            continue
        excluded = condition.get("not", {}).get("required")
        if excluded and isinstance(instance, dict) and all(key in instance for key in excluded):
            continue
        keys.extend(branch.get("then", {}).get("properties", {}))
    return list(dict.fromkeys(keys))


_YAML11_FLOAT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")


def _with_dot(number: str) -> str:
    mantissa, exponent = re.split("[eE]", number, maxsplit=1)
    return f"{mantissa}.0e{exponent}"


def _message(error: ValidationError, root: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    """(message, hint, extra pointer token) for one leaf error."""
    validator = error.validator
    value = error.instance
    # The stubs allow "unset" for both; a leaf error from iter_errors always has them.
    expected: Any = error.validator_value
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.absolute_schema_path and isinstance(value, str):
        return f"invalid key {show(value)}", None, [value]
    if validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = _allowed_keys(schema, value, root)
        extra = [k for k in value if k not in allowed] if isinstance(value, dict) else []
        if not extra:
            return "", None, []  # the keys are known: their own errors say what is wrong
        key = extra[0]
        hint = suggest(key, allowed)
        if hint is None and allowed:
            hint = "allowed keys: " + ", ".join(sorted(k for k in allowed if k != "$import"))
        return f"unknown key {show(key)}", hint, [key]
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {show(missing)}", None, []
    if validator == "enum":
        choices = [c for c in expected if isinstance(c, str)]
        hint = suggest(value, choices) if isinstance(value, str) else None
        listed = ", ".join(show(c) for c in expected)
        return f"{show(value)} is not one of {listed}", hint, []
    if validator == "const":
        return f"{show(value)} must be {show(expected)}", None, []
    if validator == "type":
        wanted = expected
        wanted = [wanted] if isinstance(wanted, str) else wanted
        names = " or ".join(
            "a mapping" if w == "object" else "a list" if w == "array" else w for w in wanted
        )
        shown = "" if value is None or isinstance(value, (dict, list)) else f" {show(value)}"
        hint = None
        if "number" in wanted and isinstance(value, str) and _YAML11_FLOAT.match(value):
            hint = (
                f"YAML 1.1 reads {value} as a string; write it with a dot, e.g. {_with_dot(value)}"
            )
        return f"expected {names}, got {describe_type(value)}{shown}", hint, []
    if validator == "pattern" and expected.startswith("^[Ee]"):
        return (
            f"{show(value)} is not a number format written ExMy",
            "write e.g. e4m3, e5m2, e2m1 (E = exponent bits, M = mantissa bits)",
            [],
        )
    if validator == "pattern":
        return f"{show(value)} does not match the pattern {show(expected)}", None, []
    if validator == "not" and isinstance(expected, dict):
        comment = expected.get("$comment")
        return (comment or f"{show(value)} is not allowed here"), None, []
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "exclusiveMinimum": "greater than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }
        return f"{show(value)} must be {words[validator]} {expected}", None, []
    if validator in ("minItems", "maxItems", "items", "prefixItems") and isinstance(value, list):
        return f"{show(value)} must be a pair [E, M] of integers", None, []
    if validator == "minLength":
        return "must not be empty", None, []
    if validator in ("anyOf", "oneOf"):
        return f"{show(value)} is not a valid value here", None, []
    return error.message, None, []


def schema_diagnostics(
    instance: Any,
    doc: YamlDocument | None,
    file: str | None,
    *,
    schema: str = "recipe",
    definition: str | None = None,
    base_pointer: str = "",
    chain: tuple[str, ...] = (),
) -> list[Diagnostic]:
    """All schema violations of ``instance``, sorted by position."""
    if is_valid(instance, schema, definition):
        return []
    validator = validator_for(schema, definition)
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for error in validator.iter_errors(instance):
        for leaf in _leaf_errors(error):
            message, hint, extra = _message(leaf, load_schema(schema))
            if not message:
                continue
            if hint is None and isinstance(leaf.schema, dict):
                hint = leaf.schema.get("$comment")
            pointer = base_pointer + _pointer(leaf.absolute_path)
            for token in extra:
                pointer = join_pointer(pointer, token)
            if (pointer, message) in seen:
                continue
            seen.add((pointer, message))
            line = column = None
            if doc is not None:
                position = doc.position(pointer, key=bool(extra))
                if position:
                    line, column = position
            diagnostics.append(
                SchemaValidationError.diagnostic(
                    message,
                    file=file,
                    line=line,
                    column=column,
                    pointer=pointer,
                    chain=chain,
                    hint=hint,
                )
            )
    if not diagnostics:
        # The two validators disagree (they should not): trust the stricter one.
        for error in _fast_validator(schema, definition).iter_errors(instance):
            pointer = base_pointer + _pointer(error.instance_path)
            position = doc.position(pointer) if doc is not None else None
            line, column = position or (None, None)
            diagnostics.append(
                SchemaValidationError.diagnostic(
                    error.message,
                    file=file,
                    line=line,
                    column=column,
                    pointer=pointer,
                    chain=chain,
                )
            )
    diagnostics.sort(key=lambda d: (d.line or 0, d.column or 0, d.pointer))
    return diagnostics


def check_schema(instance: Any, doc: YamlDocument | None, file: str | None, **options: Any) -> None:
    """Raise :class:`SchemaValidationError` with every violation, if there is any."""
    diagnostics = schema_diagnostics(instance, doc, file, **options)
    if diagnostics:
        raise SchemaValidationError(diagnostics)
