"""Turn an expanded recipe tree into the flat canonical form (see docs/flat-form.md).

Defaults are read from the published flat schema, never restated here.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ..schema import (
    attribute_defaults,
    default_algorithm,
    default_description,
    rotate_defaults,
    schema_id,
)
from .canonical import fingerprint
from .errors import Diagnostic, RecipeError, RecipeSemanticError, SchemaValidationError
from .resolver import Origin, Resolution
from .schemacheck import schema_diagnostics, show
from .yamlio import join_pointer

_EXMY = re.compile(r"^[Ee](\d+)[Mm](\d+)$")


def exmy(value: Any) -> Any:
    """``"e4m3"`` -> ``[4, 3]``; other values unchanged."""
    if isinstance(value, str):
        match = _EXMY.match(value)
        if match:
            return [int(match.group(1)), int(match.group(2))]
    return value


def normalize_attributes(cfg: dict[str, Any]) -> dict[str, Any]:
    """All nineteen attributes, defaults filled, ExMy strings turned into pairs."""
    attributes = dict(attribute_defaults())
    for key, value in cfg.items():
        value = copy.deepcopy(value)
        if key == "num_bits":
            value = exmy(value)
        elif key == "block_sizes" and isinstance(value, dict):
            value = {k: exmy(v) if k == "scale_bits" else v for k, v in value.items()}
        elif key == "rotate" and isinstance(value, dict):
            value = {**rotate_defaults(), **value}
        attributes[key] = value
    return attributes


def _is_empty_cfg(cfg: Any) -> bool:
    if isinstance(cfg, dict):
        return not cfg
    if isinstance(cfg, list):
        return all(isinstance(item, dict) and not item for item in cfg)
    return False


class _Flattener:
    def __init__(self, resolution: Resolution) -> None:
        self.resolution = resolution
        self.origins: dict[str, Origin] = {}
        self.problems: list[Diagnostic] = []

    def note(self, pointer: str, obj: Any) -> None:
        origin = self.resolution.origin(obj)
        if origin is not None:
            self.origins[pointer] = origin

    def problem(
        self,
        message: str,
        pointer: str,
        hint: str | None = None,
        *,
        key: str | None = None,
        error: type[RecipeError] = RecipeSemanticError,
    ) -> None:
        origin = self.locate(pointer)
        suffix = f"/{key}" if key else ""
        line, column = origin.position(suffix) if origin else (None, None)
        self.problems.append(
            error.diagnostic(
                message,
                file=origin.file if origin else self.resolution.recipe,
                line=line,
                column=column,
                pointer=(origin.pointer if origin else pointer) + suffix,
                chain=origin.chain if origin else (),
                hint=hint,
            )
        )

    def located_at(self, pointer: str) -> str:
        """The longest prefix of ``pointer`` whose origin is known."""
        while pointer and pointer not in self.origins:
            pointer = pointer.rsplit("/", 1)[0]
        return pointer

    def locate(self, pointer: str) -> Origin | None:
        while True:
            if pointer in self.origins:
                return self.origins[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]

    def entry(self, raw: Any, pointer: str) -> dict[str, Any]:
        self.note(pointer, raw)
        if not isinstance(raw, dict):
            self.problem(f"a quant_cfg entry must be a mapping, got {show(raw)}", pointer)
            return {}
        if "quantizer_name" not in raw:
            self.problem(
                "quant_cfg entry has no 'quantizer_name'",
                pointer,
                "every entry names the quantizers it applies to, e.g. quantizer_name: "
                "'*weight_quantizer'",
            )
        cfg = raw.get("cfg")
        enable = raw.get("enable")
        if "cfg" not in raw and "enable" not in raw:
            self.problem(
                f"quant_cfg entry for {show(raw.get('quantizer_name'))} gives neither 'cfg' nor "
                "'enable'",
                pointer,
                "an entry without either has no effect; add enable: true/false or a cfg",
            )
        if _is_empty_cfg(cfg) and cfg is not None:
            if enable is False:
                cfg = None
            else:
                self.problem(
                    f"empty 'cfg' for {show(raw.get('quantizer_name'))} would reset every "
                    "attribute to its default",
                    pointer,
                    "drop 'cfg' to keep the attributes, or set enable: false to disable",
                    key="cfg",
                )
        elif isinstance(cfg, dict) and cfg == {"enable": True}:
            self.problem(
                f"'cfg: {{enable: true}}' for {show(raw.get('quantizer_name'))} gives no attribute",
                pointer,
                "use the entry's own 'enable: true' to switch quantizers on",
                key="cfg",
            )
        for index, attributes in enumerate(cfg if isinstance(cfg, list) else [cfg]):
            blocks = attributes.get("block_sizes") if isinstance(attributes, dict) else None
            if isinstance(blocks, dict) and blocks.get("type") == "dynamic":
                axes = [k for k in blocks if k.lstrip("-").isdigit()]
                if len(axes) != 1:
                    where = "cfg" if isinstance(cfg, dict) else f"cfg/{index}"
                    self.note(f"{pointer}/{where}", attributes)
                    self.problem(
                        f"dynamic block quantization quantizes exactly one axis, got {len(axes)}",
                        f"{pointer}/{where}",
                        "give one axis key, usually -1 (the last axis)",
                        key="block_sizes",
                    )
        if isinstance(cfg, dict):
            self.note(join_pointer(pointer, "cfg"), raw.get("cfg"))
            cfg = normalize_attributes(cfg)
        elif isinstance(cfg, list):
            items = []
            for index, item in enumerate(cfg):
                self.note(f"{pointer}/cfg/{index}", item)
                items.append(normalize_attributes(item) if isinstance(item, dict) else item)
            cfg = items
        return {
            "quantizer_name": raw.get("quantizer_name"),
            "parent_class": raw.get("parent_class"),
            "enable": enable if enable is not None else cfg is not None,
            "cfg": cfg,
        }

    def flatten(self) -> dict[str, Any]:
        tree = self.resolution.tree
        self.note("", tree)
        metadata = tree.get("metadata") or {}
        self.note("/metadata", metadata)
        quantize = tree.get("quantize") or {}
        self.note("/quantize", quantize)
        if "quant_cfg" not in quantize:
            self.problem(
                "the quantize section has no 'quant_cfg'",
                "/quantize",
                "list the quantizer rules, starting with {quantizer_name: '*', enable: false}",
            )
        algorithm = quantize.get("algorithm", default_algorithm())
        if isinstance(algorithm, str):
            algorithm = {"method": algorithm}
        else:
            self.note("/quantize/algorithm", algorithm)
            algorithm = copy.deepcopy(algorithm)
            if isinstance(algorithm, dict) and "method" not in algorithm:
                self.problem("the algorithm mapping has no 'method'", "/quantize/algorithm")
            elif isinstance(algorithm, dict):
                # Options merged from a snippet are checked against the method they end up with.
                for found in schema_diagnostics(
                    algorithm, None, None, definition="algorithm_object"
                ):
                    self.problem(
                        found.message,
                        "/quantize/algorithm",
                        found.hint,
                        key=found.pointer.lstrip("/") or None,
                        error=SchemaValidationError,
                    )
        entries = []
        clean: list[int] = []
        for index, raw in enumerate(quantize.get("quant_cfg") or []):
            before = len(self.problems)
            entries.append(self.entry(raw, f"/quantize/quant_cfg/{index}"))
            if len(self.problems) == before:
                clean.append(index)
        flat: dict[str, Any] = {
            "$schema": schema_id("flat"),
            "metadata": {
                "recipe_type": metadata.get("recipe_type"),
                "description": metadata.get("description", default_description()),
            },
            "quantize": {
                "algorithm": algorithm,
                "quant_cfg": entries,
                "effective_bits": quantize.get("effective_bits"),
            },
        }
        if self.problems:
            # Every problem at once: the entries without one are still checked on their own.
            for index in clean:
                pointer = f"/quantize/quant_cfg/{index}"
                broken = schema_diagnostics(
                    entries[index], None, None, schema="flat", definition="entry"
                )
                self.problems += [self.located(d, pointer + d.pointer) for d in broken]
            error = (
                SchemaValidationError if self.problems[0].code == "schema" else RecipeSemanticError
            )
            raise error(self.problems)
        flat["fingerprint"] = fingerprint(flat)
        self.check(flat)
        return flat

    def check(self, flat: dict[str, Any]) -> None:
        """Validate against the flat schema; report problems where they were written."""
        if _known_valid(flat):
            return
        found = schema_diagnostics(flat, None, None, schema="flat")
        if found:
            raise SchemaValidationError([self.located(d, d.pointer) for d in found])

    def located(self, diagnostic: Diagnostic, pointer: str) -> Diagnostic:
        """A flat-schema problem at ``pointer`` of the flat form, where it was written."""
        origin = self.locate(pointer)
        # The key may come from a snippet merged into this mapping; name its path anyway.
        suffix = pointer[len(self.located_at(pointer)) :]
        line, column = origin.position(suffix) if origin else (None, None)
        return SchemaValidationError.diagnostic(
            diagnostic.message,
            file=origin.file if origin else self.resolution.recipe,
            line=line,
            column=column,
            pointer=(origin.pointer + suffix) if origin else pointer,
            chain=origin.chain if origin else (),
            hint=diagnostic.hint,
        )


_KNOWN_VALID: set[str] = set()
_KNOWN_VALID_LIMIT = 4096


def _valid_once(value: Any, definition: str | None) -> bool:
    """Whether ``value`` is valid against the flat schema (or one of its definitions).

    Validity of a JSON value against a fixed schema never changes, and recipes share most of
    their parts (the standard exclusions, the numerics), so valid values are remembered by
    their JSON text; only values never seen before pay for a full validation.
    """
    key = f"{definition}:{json.dumps(value, sort_keys=True)}"
    if key in _KNOWN_VALID:
        return True
    if schema_diagnostics(value, None, None, schema="flat", definition=definition):
        return False
    if len(_KNOWN_VALID) < _KNOWN_VALID_LIMIT:
        _KNOWN_VALID.add(key)
    return True


def _known_valid(flat: dict[str, Any]) -> bool:
    """Fast path: the document without its entries, and each entry, are valid."""
    skeleton = {**flat, "quantize": {**flat["quantize"], "quant_cfg": []}}
    return _valid_once(skeleton, None) and all(
        _valid_once(entry, "entry") for entry in flat["quantize"]["quant_cfg"]
    )


def flatten(resolution: Resolution, *, provenance: bool = False) -> dict[str, Any]:
    """The flat canonical document of an expanded recipe."""
    flattener = _Flattener(resolution)
    flat = flattener.flatten()
    if provenance:
        entries = []
        for index in range(len(flat["quantize"]["quant_cfg"])):
            origin = flattener.origins.get(f"/quantize/quant_cfg/{index}")
            entries.append(
                {
                    "file": origin.file if origin else resolution.recipe,
                    "line": (origin.line or 1) if origin else 1,
                    "chain": list(origin.chain) if origin else [],
                }
            )
        flat["provenance"] = {"recipe": resolution.recipe, "entries": entries}
    return flat
