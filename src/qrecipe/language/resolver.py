"""Expand ``imports:`` / ``$import`` into one recipe tree, remembering where everything came from.

Semantics (compatible with ModelOpt's recipe loader):

* ``imports:`` maps local names to snippet paths and is visible only in the file declaring it.
* In a mapping, ``$import: name`` or ``$import: [a, b]`` merges the named dict snippets
  shallowly, in order, and the mapping's own keys win over all of them.
* In ``quant_cfg``, an item that is exactly ``{$import: name}`` is replaced by the snippet: a
  list snippet is spliced in place, a dict snippet becomes one entry.
* A snippet is resolved in its own scope first (its own imports), recursively; a file that
  imports itself through its ancestors is an error naming the whole chain.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import (
    Diagnostic,
    ImportCycleError,
    ImportKindError,
    ImportNotFoundError,
    RecipeDeprecationWarning,
    RecipeError,
    RecipeLimitError,
    RecipeSemanticError,
    SchemaValidationError,
)
from .files import file_kind, read_file
from .library import SUFFIXES, Library, Located, deprecated_names
from .limits import (
    MAX_IMPORT_DEPTH,
    MAX_IMPORTED_FILES,
    MAX_RESOLVED_BYTES,
    MAX_RESOLVED_VALUES,
)
from .schemacheck import schema_diagnostics, show, suggest
from .yamlio import YamlDocument, join_pointer, parse_yaml

# What a file holds, told apart by shape exactly as the schema's top-level if/then/else does.
RECIPE = "recipe"
RECIPE_METADATA = "directory_recipe_file"
METADATA_FILE = "metadata_file"
QUANTIZE_FILE = "quantize_file"
ENTRY_LIST = "entry_list"
ENTRY = "entry_snippet"
ALGORITHM = "algorithm_snippet"
ATTRIBUTES = "attributes_snippet"
HEADER = "list_snippet_header"

KIND_WORDS = {
    RECIPE: "a recipe",
    RECIPE_METADATA: "a recipe.yml of a directory recipe",
    METADATA_FILE: "a metadata file of a directory recipe",
    QUANTIZE_FILE: "a quantize section",
    ENTRY_LIST: "a list snippet of quant_cfg entries",
    ENTRY: "a quant_cfg entry snippet",
    ALGORITHM: "an algorithm snippet",
    ATTRIBUTES: "a quantizer-attributes snippet",
    HEADER: "an imports-only document",
}

# The mapping kind each place that accepts $import needs.
_PLACE_KIND = {
    "quantize": QUANTIZE_FILE,
    "algorithm": ALGORITHM,
    "entry": ENTRY,
    "attributes": ATTRIBUTES,
}


def detect_kind(data: Any) -> str:
    """The kind of a parsed file, by shape."""
    if isinstance(data, list):
        return ENTRY_LIST
    if not isinstance(data, dict):
        return ATTRIBUTES
    keys = set(data)
    if keys & {"metadata", "quantize"}:
        return RECIPE
    if "recipe_type" in keys:
        return METADATA_FILE
    if keys & {"quant_cfg", "algorithm"}:
        return QUANTIZE_FILE
    if keys & {"quantizer_name", "parent_class", "cfg"}:
        return ENTRY
    if "method" in keys:
        return ALGORITHM
    if keys == {"imports"}:
        return HEADER
    return ATTRIBUTES


@dataclass
class SourceFile:
    """A parsed, schema-checked recipe or snippet file."""

    located: Located
    documents: list[YamlDocument]
    body: Any
    body_doc: YamlDocument
    imports: dict[str, str]
    imports_doc: YamlDocument | None
    kind: str
    # Values left out of the expansion (JSON pointers into the body): parts of a file with
    # problems, so that the rest of it can still be checked (see allproblems.py).
    dropped: frozenset[str] = frozenset()

    @property
    def display(self) -> str:
        return self.located.display

    @cached_property
    def size(self) -> tuple[int, int]:
        """The values and bytes of text of the body as written (see :func:`measure`)."""
        return measure(self.body)

    @property
    def path(self) -> Path:
        return self.located.path

    def where(
        self, pointer: str, *, key: bool = False, doc: YamlDocument | None = None
    ) -> tuple[int | None, int | None]:
        position = (doc or self.body_doc).position(pointer, key=key)
        return position if position else (None, None)

    def error(
        self,
        error_type: type[RecipeError],
        message: str,
        pointer: str,
        *,
        chain: tuple[str, ...] = (),
        hint: str | None = None,
        key: bool = False,
    ) -> RecipeError:
        """An ``error_type`` at ``pointer`` of this file (at its key with ``key``)."""
        line, column = self.where(pointer, key=key)
        return error_type(
            message,
            file=self.display,
            line=line,
            column=column,
            pointer=pointer,
            chain=chain,
            hint=hint,
        )


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resolved mapping was written (line and column are looked up when asked for)."""

    file: str
    pointer: str
    chain: tuple[str, ...]
    document: YamlDocument | None = field(default=None, compare=False, repr=False)

    @property
    def line(self) -> int | None:
        return self.position("")[0]

    @property
    def column(self) -> int | None:
        return self.position("")[1]

    def position(self, suffix: str) -> tuple[int | None, int | None]:
        """Line and column of ``pointer + suffix``, or of the nearest enclosing value."""
        if self.document is None:
            return None, None
        return self.document.position(self.pointer + suffix) or (None, None)


class Resolution:
    """The result of expanding one recipe: the tree plus the origin of each mapping in it."""

    def __init__(self, tree: dict[str, Any], origins: dict[int, Origin], recipe: str) -> None:
        self.tree = tree
        self._origins = origins
        self.recipe = recipe

    def origin(self, obj: Any) -> Origin | None:
        return self._origins.get(id(obj))


class Resolver:
    """Reads and expands recipes; caches parsed files for the lifetime of the object."""

    def __init__(self, library: Library | None = None) -> None:
        self.library = library or Library()
        # Parsed files, by path and by the kind they were read as (a directory recipe's
        # recipe.yml is read as one; the same file named on its own is read by its shape).
        self._files: dict[tuple[Path, str | None], tuple[float, int, SourceFile]] = {}

    # ------------------------------------------------------------------ reading files
    def read(self, located: Located, *, standalone_kind: str | None = None) -> SourceFile:
        """Parse and schema-check one file (cached by path, size and mtime)."""
        path = located.path
        try:
            stat = path.stat()
        except (OSError, ValueError):
            stat = None
        cached = self._files.get((path, standalone_kind))
        if cached and stat and cached[0] == stat.st_mtime and cached[1] == stat.st_size:
            return cached[2]
        raw = read_file(path, located.display)
        source = self.parse(raw, located, standalone_kind=standalone_kind)
        if stat is not None:
            self._files[(path, standalone_kind)] = (stat.st_mtime, stat.st_size, source)
        return source

    def parse(
        self, raw: bytes | str, located: Located, *, standalone_kind: str | None = None
    ) -> SourceFile:
        display = located.display
        documents = parse_yaml(raw, display)
        if not documents or all(d.data is None for d in documents):
            raise RecipeSemanticError(f"{display} is empty", file=display, line=1, column=1)
        imports_doc: YamlDocument | None
        if len(documents) == 2:
            header, body_doc = documents
            if header.data is not None and not (isinstance(header.data, dict)):
                raise SchemaValidationError(
                    "the first of two YAML documents must be a mapping holding only 'imports', "
                    f"got {_kind_of_value(header.data)}",
                    file=display,
                    line=header.start[0],
                    column=header.start[1],
                )
            diagnostics = schema_diagnostics(header.data or {}, header, display, definition=HEADER)
            header_problems = bool(diagnostics)
            if not isinstance(body_doc.data, list):
                diagnostics.append(
                    SchemaValidationError.diagnostic(
                        "the second of two YAML documents must be a list of quant_cfg entries, "
                        f"got {_kind_of_value(body_doc.data)}",
                        file=display,
                        line=body_doc.start[0],
                        column=body_doc.start[1],
                        hint="only list snippets use two documents; "
                        "put 'imports' in the mapping itself",
                    )
                )
            else:
                diagnostics += schema_diagnostics(
                    body_doc.data, body_doc, display, definition=ENTRY_LIST
                )
            if diagnostics:
                if not header_problems:
                    diagnostics += self.import_problems(
                        located, documents, body_doc.data, header.data or {}, header, ENTRY_LIST
                    )
                raise SchemaValidationError(_by_position(diagnostics))
            imports = dict((header.data or {}).get("imports") or {})
            imports_doc = header
            body = body_doc.data
            kind = ENTRY_LIST
        else:
            body_doc = documents[0]
            body = body_doc.data
            if not isinstance(body, (dict, list)):
                raise SchemaValidationError(
                    f"a recipe or snippet must be a mapping or a list, got {_kind_of_value(body)}",
                    file=display,
                    line=body_doc.start[0],
                    column=body_doc.start[1],
                )
            kind = standalone_kind or detect_kind(body)
            definition = (
                standalone_kind if standalone_kind in (RECIPE_METADATA, METADATA_FILE) else None
            )
            diagnostics = schema_diagnostics(body, body_doc, display, definition=definition)
            if diagnostics:
                if isinstance(body, dict) and not any(_under(d, "/imports") for d in diagnostics):
                    without = {k: v for k, v in body.items() if k != "imports"}
                    diagnostics += self.import_problems(
                        located, documents, without, body, body_doc, kind
                    )
                raise SchemaValidationError(_by_position(diagnostics))
            imports = dict(body.get("imports") or {}) if isinstance(body, dict) else {}
            imports_doc = body_doc
            if isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != "imports"}
        return SourceFile(located, documents, body, body_doc, imports, imports_doc, kind)

    def import_problems(
        self,
        located: Located,
        documents: list[YamlDocument],
        body: Any,
        header: dict[str, Any],
        imports_doc: YamlDocument,
        kind: str,
    ) -> list[Diagnostic]:
        """The import problems of a file that has schema problems elsewhere: snippets that are not
        found and ``$import`` names that are not declared, which no schema problem can cause
        once ``imports:`` itself is well-formed (the caller has checked that), so that one
        misspelt key does not hide them."""
        imports = dict(header.get("imports") or {})
        source = SourceFile(located, documents, body, documents[-1], imports, imports_doc, kind)
        try:
            _Expansion(self).check_declared_imports(source, ())
        except RecipeError as error:
            return list(error.diagnostics)
        return []

    def unchecked(self, located: Located) -> SourceFile | None:
        """A file as written, schema problems and all, for finding the problems beyond its first
        (None when it is not even shaped like a recipe or snippet). Never cached."""
        try:
            documents = parse_yaml(read_file(located.path, located.display), located.display)
        except RecipeError:
            return None
        if len(documents) == 2 and isinstance(documents[1].data, list):
            header, body_doc = documents
            holder, body, kind = header.data, body_doc.data, ENTRY_LIST
            imports_doc = header
        elif len(documents) == 1 and isinstance(documents[0].data, (dict, list)):
            body_doc = imports_doc = documents[0]
            body = holder = body_doc.data
            kind = detect_kind(body)
            if isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != "imports"}
        else:
            return None
        imports = holder.get("imports") if isinstance(holder, dict) else None
        if imports is not None and not isinstance(imports, dict):
            return None
        return SourceFile(
            located, documents, body, body_doc, dict(imports or {}), imports_doc, kind
        )

    def expand_source(
        self, source: SourceFile
    ) -> tuple[Resolution | None, RecipeError | None, str | None]:
        """Expand a parsed file (a recipe, or a snippet on its own): its resolution, or its first
        problem and the pointer of the import written in ``source`` that led to it, if any."""
        expansion = _Expansion(self)
        try:
            if source.kind == RECIPE:
                tree = expansion.recipe(source)
            else:
                value = expansion.snippet(source, (), place=None, pointer="", importer=None)
                tree = value if isinstance(value, dict) else {}
        except RecipeError as error:
            sites = [at for file, at, _, _ in expansion.failed_imports or () if file is source]
            return None, error, sites[0] if sites else None
        return Resolution(tree, expansion.origins, source.display), None, None

    # ------------------------------------------------------------------ recipes
    def resolve(self, located: Located) -> Resolution:
        """Expand a recipe (file or directory) into one tree without imports."""
        expansion = _Expansion(self)
        if file_kind(located.path) == "dir":
            tree = expansion.directory_recipe(located)
        else:
            source = self.read(located)
            if source.kind != RECIPE:
                raise RecipeSemanticError(
                    f"{source.display} is {KIND_WORDS[source.kind]}, not a recipe",
                    file=source.display,
                    line=source.body_doc.start[0],
                    column=source.body_doc.start[1],
                    hint="a recipe has 'metadata' (recipe_type: ptq) and 'quantize'",
                )
            tree = expansion.recipe(source)
        return Resolution(tree, expansion.origins, located.display)

    def resolve_snippet(self, located: Located) -> tuple[Any, str, Resolution]:
        """Expand a snippet file on its own (for ``qrecipe validate``): value, kind, origins."""
        expansion = _Expansion(self)
        source = self.read(located)
        value = expansion.snippet(source, (), place=None, pointer="", importer=None)
        return (
            value,
            source.kind,
            Resolution(value if isinstance(value, dict) else {}, expansion.origins, source.display),
        )


def _under(diagnostic: Diagnostic, pointer: str) -> bool:
    return diagnostic.pointer == pointer or diagnostic.pointer.startswith(pointer + "/")


def _by_position(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Problems in the order they are written (as schema problems alone are)."""
    return sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0, d.pointer))


def _kind_of_value(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the scalar {show(value)}"


class _Expansion:
    """State of one expansion: origins of produced mappings and the import stack."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.origins: dict[int, Origin] = {}
        self.stack: list[Path] = []
        self.keep_alive: list[Any] = []
        self.files_imported = 0
        self.checked: set[Path] = set()
        # What the expanded recipe holds so far, and the imports being expanded (innermost
        # last): an import that makes it too big is named where it is written.
        self.values = 0
        self.bytes = 0
        self.importing: list[tuple[SourceFile, str, str, tuple[str, ...]]] = []
        # The imports being expanded when the first problem was raised, outermost first: which
        # entry of the recipe led to a problem inside a snippet.
        self.failed_imports: tuple[tuple[SourceFile, str, str, tuple[str, ...]], ...] | None = None

    def count(
        self, values: int, size: int, source: SourceFile, pointer: str, chain: tuple[str, ...]
    ) -> None:
        """Add to the size of the expanded recipe; refuse it past the limits."""
        self.values += values
        self.bytes += size
        if self.values <= MAX_RESOLVED_VALUES and self.bytes <= MAX_RESOLVED_BYTES:
            return
        what = (
            f"more than {MAX_RESOLVED_VALUES} values"
            if self.values > MAX_RESOLVED_VALUES
            else f"more than {MAX_RESOLVED_BYTES} bytes of text"
        )
        if self.importing:
            source, pointer, name, chain = self.importing[-1]
            message = (
                f"the recipe expands to {what} at '$import: {name}' "
                f"({source.imports.get(name, name)})"
            )
        else:
            message = f"the recipe expands to {what}"
        raise source.error(
            RecipeLimitError,
            message,
            pointer,
            chain=chain,
            hint="an import used many times multiplies the recipe; import a snippet once, "
            "or split the recipe",
        )

    def refuse_early(self, target: SourceFile, chain: tuple[str, ...]) -> None:
        """Refuse an imported snippet that crosses a limit before copying any of it.

        A snippet without imports expands to exactly what is written in it, so it is counted
        at once, and refused with the message its copying would end in: at the import, for the
        one limit it crosses. Crossing both, the copying itself finds which one comes first.
        """
        values, size = target.size
        over_values = self.values + values > MAX_RESOLVED_VALUES
        over_bytes = self.bytes + size > MAX_RESOLVED_BYTES
        if over_values != over_bytes:
            self.count(values, size, target, "", chain)

    def copied(self, value: Any, source: SourceFile, pointer: str, chain: tuple[str, ...]) -> Any:
        """A copy of ``value`` for the expanded recipe, counted before it is made."""
        self.count(*measure(value), source, pointer, chain)
        return copy.deepcopy(value) if isinstance(value, (dict, list)) else value

    def _record(self, obj: Any, source: SourceFile, pointer: str, chain: tuple[str, ...]) -> None:
        self.origins[id(obj)] = Origin(source.display, pointer, chain, source.body_doc)
        self.keep_alive.append(obj)

    # ---------------------------------------------------------------- entry points
    def recipe(self, source: SourceFile) -> dict[str, Any]:
        chain = (source.display,)
        self.check_declared_imports(source, chain)
        self.stack.append(source.located.real)
        self.count(1, 0, source, "", chain)
        tree: dict[str, Any] = {}
        for key, value in source.body.items():
            pointer = join_pointer("", key)
            if pointer in source.dropped:
                continue
            if source.dropped and isinstance(value, dict):
                value = {
                    k: v for k, v in value.items() if join_pointer(pointer, k) not in source.dropped
                }
            self.count(0, text_size(key), source, pointer, chain)
            if key == "quantize" and isinstance(value, dict):
                tree[key] = self.mapping(value, source, pointer, chain, "quantize")
            else:
                tree[key] = self.copied(value, source, pointer, chain)
                if isinstance(tree[key], dict):
                    self._record(tree[key], source, pointer, chain)
        self._record(tree, source, "", chain)
        self.stack.pop()
        return tree

    def directory_recipe(self, located: Located) -> dict[str, Any]:
        directory = located.path

        def part(*stems: str) -> Located | None:
            for stem in stems:
                for suffix in SUFFIXES:
                    file = directory / f"{stem}{suffix}"
                    if file_kind(file) == "file":
                        return Located(file, located.root)
            return None

        recipe_file = part("recipe")
        metadata_file = part("metadata") if recipe_file is None else None
        quantize_file = part("quantize")
        tree: dict[str, Any] = {}
        if recipe_file is not None:
            source = self.resolver.read(recipe_file, standalone_kind=RECIPE_METADATA)
            if "quantize" in source.body and quantize_file is not None:
                raise source.error(
                    RecipeSemanticError,
                    f"{located.display} has both a 'quantize' section here "
                    f"and {quantize_file.display}",
                    "/quantize",
                    hint="keep the quantize section in one place",
                    key=True,
                )
            tree = self.recipe(source)
        elif metadata_file is not None:
            source = self.resolver.read(metadata_file, standalone_kind=METADATA_FILE)
            tree["metadata"] = self.copied(source.body, source, "", (source.display,))
            self._record(tree["metadata"], source, "", (source.display,))
        if quantize_file is not None:
            source = self.resolver.read(quantize_file)
            if source.kind not in (QUANTIZE_FILE, ATTRIBUTES):
                raise ImportKindError(
                    f"{source.display} is {KIND_WORDS[source.kind]}, not a quantize section",
                    file=source.display,
                    line=source.body_doc.start[0],
                    column=source.body_doc.start[1],
                    hint="quantize.yml holds a mapping with 'algorithm' and 'quant_cfg'",
                )
            self.stack.append(source.located.real)
            tree["quantize"] = self.mapping(source.body, source, "", (source.display,), "quantize")
            self.stack.pop()
        elif "quantize" not in tree:
            raise RecipeSemanticError(
                f"directory recipe {located.display} has no quantize.yml (or quantize.yaml)",
                file=located.display,
            )
        self._record(tree, source, "", (located.display,))
        return tree

    # ---------------------------------------------------------------- mappings and lists
    def mapping(
        self,
        node: dict[str, Any],
        source: SourceFile,
        pointer: str,
        chain: tuple[str, ...],
        place: str,
    ) -> dict[str, Any]:
        """Expand a mapping at ``place`` (quantize, algorithm, entry, attributes)."""
        # The mapping, its keys and its scalar values are counted at once, before it is built.
        values, size = 1, 0
        for key, value in node.items():
            if key != "$import":
                size += text_size(key)
                if not isinstance(value, (dict, list)):
                    values += 1
                    size += text_size(value) if isinstance(value, str) else 0
        self.count(values, size, source, pointer, chain)
        result: dict[str, Any] = {}
        if "$import" in node:
            names = node["$import"]
            for index, name in enumerate(names if isinstance(names, list) else [names]):
                at = join_pointer(pointer, "$import")
                if isinstance(names, list):
                    at = join_pointer(at, index)
                value = self.import_value(name, source, at, chain, place)
                if not isinstance(value, dict):
                    raise source.error(
                        ImportKindError,
                        f"'$import: {name}' in a mapping needs a dict snippet, "
                        f"but {source.imports[name]} is a list snippet",
                        at,
                        chain=chain,
                        hint="splice list snippets into quant_cfg "
                        "with a list item '- $import: name'",
                    )
                result.update(value)
        for key, value in node.items():
            if key == "$import" or (
                source.dropped and join_pointer(pointer, key) in source.dropped
            ):
                continue
            if isinstance(value, (dict, list)):
                value = self.child(place, key, value, source, join_pointer(pointer, key), chain)
            result[key] = value  # a scalar is as written, and counted above
        self._record(result, source, pointer, chain)
        return result

    def child(
        self,
        place: str,
        key: str,
        value: Any,
        source: SourceFile,
        pointer: str,
        chain: tuple[str, ...],
    ) -> Any:
        if place == "quantize" and key == "algorithm" and isinstance(value, dict):
            return self.mapping(value, source, pointer, chain, "algorithm")
        if place == "quantize" and key == "quant_cfg" and isinstance(value, list):
            return self.entries(value, source, pointer, chain)
        if place == "entry" and key == "cfg":
            if isinstance(value, dict):
                return self.mapping(value, source, pointer, chain, "attributes")
            if isinstance(value, list):
                self.count(1, 0, source, pointer, chain)
                return [
                    self.mapping(item, source, join_pointer(pointer, i), chain, "attributes")
                    if isinstance(item, dict)
                    else self.copied(item, source, join_pointer(pointer, i), chain)
                    for i, item in enumerate(value)
                ]
        if place == "algorithm" and isinstance(value, dict) and key.endswith("algorithm"):
            return self.mapping(value, source, pointer, chain, "algorithm")
        if not isinstance(value, (dict, list)):
            return value  # counted with the mapping that holds it
        result = self.copied(value, source, pointer, chain)
        if isinstance(result, dict):
            self._record(result, source, pointer, chain)
        return result

    def entries(
        self, items: list[Any], source: SourceFile, pointer: str, chain: tuple[str, ...]
    ) -> list[Any]:
        self.count(1, 0, source, pointer, chain)
        result: list[Any] = []
        for index, item in enumerate(items):
            at = join_pointer(pointer, index)
            if source.dropped and at in source.dropped:
                continue
            if isinstance(item, dict) and set(item) == {"$import"}:
                names = item["$import"]
                for n, name in enumerate(names if isinstance(names, list) else [names]):
                    where = join_pointer(at, "$import")
                    if isinstance(names, list):
                        where = join_pointer(where, n)
                    value = self.import_value(name, source, where, chain, "entry")
                    if isinstance(value, list):
                        result.extend(value)
                    else:
                        result.append(value)
            elif isinstance(item, dict):
                result.append(self.mapping(item, source, at, chain, "entry"))
            else:
                result.append(self.copied(item, source, at, chain))
        return result

    # ---------------------------------------------------------------- imports
    def import_value(
        self, name: str, source: SourceFile, pointer: str, chain: tuple[str, ...], place: str
    ) -> Any:
        self.importing.append((source, pointer, name, chain))
        try:
            target = self.load_import(name, source, pointer, chain)
            return self.snippet(target, chain, place=place, pointer=pointer, importer=source)
        except RecipeError:
            if self.failed_imports is None:
                self.failed_imports = tuple(self.importing)
            raise
        finally:
            self.importing.pop()

    def load_import(
        self, name: str, source: SourceFile, pointer: str, chain: tuple[str, ...]
    ) -> SourceFile:
        if name not in source.imports:
            raise ImportNotFoundError(
                _undeclared(name, sorted(source.imports), source, pointer, chain)
            )
        found = self.locate_import(name, source, chain)
        if found.real in self.stack:
            cycle = [*chain, found.display]
            raise source.error(
                ImportCycleError,
                "import cycle: " + " -> ".join(cycle),
                pointer,
                chain=tuple(cycle),
                hint="a snippet must not import itself, directly or through other snippets",
            )
        if len(self.stack) >= MAX_IMPORT_DEPTH or self.files_imported >= MAX_IMPORTED_FILES:
            message = (
                f"imports nest deeper than {MAX_IMPORT_DEPTH} levels"
                if len(self.stack) >= MAX_IMPORT_DEPTH
                else f"more than {MAX_IMPORTED_FILES} imports in one recipe"
            )
            raise source.error(RecipeLimitError, message, pointer, chain=chain)
        self.files_imported += 1
        try:
            return self.resolver.read(found)
        except RecipeError as exc:
            raise type(exc)([_with_chain(d, chain) for d in exc.diagnostics]) from None

    def locate_import(self, name: str, source: SourceFile, chain: tuple[str, ...]) -> Located:
        """Find the file an ``imports:`` name refers to; errors point at that ``imports:`` line."""
        path_name = source.imports[name]
        imports_pointer = join_pointer("/imports", name)
        line, column = source.where(imports_pointer, doc=source.imports_doc)
        try:
            found = self.resolver.library.find_import(path_name, source.located.root)
        except RecipeError as exc:
            raise type(exc)(
                exc.first.message,
                file=source.display,
                line=line,
                column=column,
                pointer=imports_pointer,
                chain=chain,
                hint=exc.first.hint,
            ) from None
        if found is None and path_name in deprecated_names():
            renamed = deprecated_names()[path_name]
            warnings.warn(
                f"{source.display}:{line}: snippet name {path_name!r} is deprecated; use "
                f"{renamed!r}",
                RecipeDeprecationWarning,
                stacklevel=2,
            )
            found = self.resolver.library.find_import(renamed, source.located.root)
        if found is None:
            library = self.resolver.library
            searched = library.searched(source.located.root)
            similar = library.similar_name(path_name)
            hint = f"searched {searched}; add a directory with --path"
            if similar is not None:
                hint = f"did you mean {show(similar)}? {hint}"
            raise ImportNotFoundError(
                f"snippet {show(path_name)} (imported as {show(name)}) was not found",
                file=source.display,
                line=line,
                column=column,
                pointer=imports_pointer,
                chain=chain,
                hint=hint,
            )
        return found

    def check_declared_imports(self, source: SourceFile, chain: tuple[str, ...]) -> None:
        """Every name in ``imports:`` must exist, used or not (ModelOpt loads them all too), and
        every ``$import`` must name one of them; all such problems of a file are reported
        together."""
        if source.located.real in self.checked:
            return
        self.checked.add(source.located.real)
        failed: list[RecipeError] = []
        for name in source.imports:
            if source.dropped and join_pointer("/imports", name) in source.dropped:
                continue
            try:
                self.locate_import(name, source, chain)
            except RecipeError as error:
                failed.append(error)
        undeclared = list(self.undeclared_imports(source, chain))
        if undeclared:
            failed.append(ImportNotFoundError(undeclared))
        if failed:
            raise type(failed[0])([d for error in failed for d in error.diagnostics])

    def undeclared_imports(
        self, source: SourceFile, chain: tuple[str, ...]
    ) -> Iterator[Diagnostic]:
        """Every ``$import`` in the file naming nothing in its ``imports:``."""
        if not _names_undeclared(source.body, source.imports):
            return  # the common case, found without making a pointer for every value
        declared = sorted(source.imports)

        def walk(node: Any, pointer: str) -> Iterator[Diagnostic]:
            if isinstance(node, list):
                for index, item in enumerate(node):
                    if join_pointer(pointer, index) not in source.dropped:
                        yield from walk(item, join_pointer(pointer, index))
                return
            if not isinstance(node, dict):
                return
            for key, value in node.items():
                at = join_pointer(pointer, key)
                if at in source.dropped:
                    continue
                if key != "$import":
                    yield from walk(value, at)
                    continue
                names = value if isinstance(value, list) else [value]
                for index, name in enumerate(names):
                    if not isinstance(name, str) or name in source.imports:
                        continue
                    where = join_pointer(at, index) if isinstance(value, list) else at
                    yield _undeclared(name, declared, source, where, chain)

        yield from walk(source.body, "")

    def snippet(
        self,
        target: SourceFile,
        chain: tuple[str, ...],
        *,
        place: str | None,
        pointer: str,
        importer: SourceFile | None,
    ) -> Any:
        """The value of a snippet, expanded in its own scope."""
        new_chain = (*chain, target.display)
        if place is not None and target.kind != ENTRY_LIST:
            wanted = _PLACE_KIND[place]
            only_imports = isinstance(target.body, dict) and set(target.body) <= {"$import"}
            if target.kind != wanted and not only_imports:
                raise _kind_error(
                    f"{target.display} is {KIND_WORDS[target.kind]}, but this place needs "
                    f"{KIND_WORDS[wanted]}",
                    target,
                    importer,
                    pointer,
                    new_chain,
                )
        if place is not None and place != "entry" and target.kind == ENTRY_LIST:
            return []  # reported by the caller, which knows the import name
        if target.kind in (RECIPE, RECIPE_METADATA, METADATA_FILE, HEADER):
            raise _kind_error(
                f"{target.display} is {KIND_WORDS[target.kind]} and cannot be imported",
                target,
                importer,
                pointer,
                new_chain,
            )
        self.check_declared_imports(target, new_chain)
        if self.importing and not target.imports:
            self.refuse_early(target, new_chain)
        self.stack.append(target.located.real)
        try:
            if target.kind == ENTRY_LIST:
                return self.entries(target.body, target, "", new_chain)
            own_place = place or {v: k for k, v in _PLACE_KIND.items()}[target.kind]
            return self.mapping(target.body, target, "", new_chain, own_place)
        finally:
            self.stack.pop()


def _names_undeclared(node: Any, imports: dict[str, str]) -> bool:
    """Whether a ``$import`` in ``node`` names something ``imports`` does not declare."""
    if isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)) and _names_undeclared(item, imports):
                return True
        return False
    if not isinstance(node, dict):
        return False
    for key, value in node.items():
        if key == "$import":
            for name in value if isinstance(value, list) else [value]:
                if isinstance(name, str) and name not in imports:
                    return True
        elif isinstance(value, (dict, list)) and _names_undeclared(value, imports):
            return True
    return False


def _undeclared(
    name: str, declared: list[str], source: SourceFile, pointer: str, chain: tuple[str, ...]
) -> Diagnostic:
    """``$import: name`` where ``name`` is not in the file's ``imports:``."""
    line, column = source.where(pointer)
    hint = suggest(name, declared) or (
        "declared names: " + ", ".join(declared) if declared else "this file declares no imports"
    )
    return ImportNotFoundError.diagnostic(
        f"'$import: {name}' names nothing in this file's 'imports:'",
        file=source.display,
        line=line,
        column=column,
        pointer=pointer,
        chain=chain,
        hint=hint,
    )


def text_size(text: str) -> int:
    """Bytes of a string in UTF-8."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def measure(value: Any) -> tuple[int, int]:
    """The values in ``value`` (itself included) and the bytes of its strings and keys."""
    if isinstance(value, dict):
        values, size = 1, 0
        for key, item in value.items():
            inner = measure(item)
            values, size = values + inner[0], size + inner[1] + text_size(key)
        return values, size
    if isinstance(value, list):
        values, size = 1, 0
        for item in value:
            inner = measure(item)
            values, size = values + inner[0], size + inner[1]
        return values, size
    return 1, text_size(value) if isinstance(value, str) else 0


def _kind_error(
    message: str,
    target: SourceFile,
    importer: SourceFile | None,
    pointer: str,
    chain: tuple[str, ...],
) -> ImportKindError:
    """A snippet of the wrong kind, reported where it is imported."""
    where = importer or target
    line, column = importer.where(pointer) if importer else target.body_doc.start
    return ImportKindError(
        message, file=where.display, line=line, column=column, pointer=pointer, chain=chain
    )


def _with_chain(diagnostic: Diagnostic, chain: tuple[str, ...]) -> Diagnostic:
    if diagnostic.chain:
        return diagnostic
    return dataclasses.replace(diagnostic, chain=(*chain, diagnostic.file or "?"))
