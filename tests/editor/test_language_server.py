"""Editor support, checked with a real YAML language server (the one VS Code's YAML extension uses).

``npm ci`` installs the server pinned in package-lock.json next to this file; the test speaks
LSP to it over stdio, maps the published recipe schema to ``*.qrecipe.yaml`` documents the way
the catalog does, and checks completion, hover, diagnostics and snippets. Skipped only where
node or npm is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsp_client import LanguageServer

import qrecipe
from helpers import BAD_RECIPE, QUANT_CFG_HEAD
from qrecipe.schema import load_schema, schema_text

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SCHEMA_DIR = HERE.parents[1] / "src" / "qrecipe" / "schema"
SERVER_SCRIPT = HERE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
CURSOR = "<|>"

QUANTIZER_ATTRIBUTES = {
    "num_bits",
    "axis",
    "block_sizes",
    "unsigned",
    "narrow_range",
    "fake_quant",
    "type",
    "bias",
    "calibrator",
    "rotate",
    "pass_through_bwd",
    "trt_high_precision_dtype",
    "backend",
    "backend_extra_args",
    "use_constant_amax",
    "constant_amax",
    "learn_amax",
    "effective_bits",
    "enable",
}

ENTRY_SNIPPETS = {
    snippet["label"]: snippet
    for snippet in load_schema("recipe")["$defs"]["quant_cfg_entry"]["defaultSnippets"]
}


NEW_ENTRY = QUANT_CFG_HEAD + "    - quantizer_name: '*'\n      enable: false\n    - q<|>\n"

INSIDE_CFG = QUANT_CFG_HEAD + "    - quantizer_name: '*weight_quantizer'\n      cfg:\n        <|>\n"

# Line 6 (0-based) holds the bad number format at column 18, line 7 the misspelt key.
MISTAKES = BAD_RECIPE

VALID = (
    QUANT_CFG_HEAD + "    - quantizer_name: '*'\n      enable: false\n"
    "    - quantizer_name: '*weight_quantizer'\n      cfg:\n        num_bits: e4m3\n"
)


def _settings() -> dict[str, Any]:
    """Editor settings as docs/editor.md gives them: each local schema file gets the catalog's
    file patterns. The schema store is off so that the server never goes to the network."""
    catalog = json.loads(schema_text("catalog"))
    schemas = {
        (SCHEMA_DIR / Path(entry["url"]).name).as_uri(): entry["fileMatch"]
        for entry in catalog["schemas"]
    }
    return {
        "yaml": {
            "schemas": schemas,
            "validate": True,
            "hover": True,
            "completion": True,
            "schemaStore": {"enable": False},
        }
    }


@pytest.fixture(scope="module")
def installed_server() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("needs node and npm")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=HERE,
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert SERVER_SCRIPT.is_file()
    return Path(node)


class Editor:
    """Opens documents in a running server and asks it about positions in them."""

    def __init__(self, server: LanguageServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.opened = 0

    def open(self, text: str, suffix: str = ".qrecipe.yaml") -> tuple[str, dict[str, int]]:
        """Open ``text`` (with at most one cursor marker); returns its URI and the cursor."""
        before, _, after = text.partition(CURSOR)
        lines = before.split("\n")
        cursor = {"line": len(lines) - 1, "character": len(lines[-1])}
        self.opened += 1
        uri = (self.folder / f"doc{self.opened}{suffix}").as_uri()
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": before + after}
        self.server.notify("textDocument/didOpen", {"textDocument": document})
        return uri, cursor

    def completion(self, text: str) -> list[dict[str, Any]]:
        uri, cursor = self.open(text)
        result = self.server.request(
            "textDocument/completion", {"textDocument": {"uri": uri}, "position": cursor}
        )
        return result["items"] if isinstance(result, dict) else (result or [])

    def hover(self, text: str) -> dict[str, Any]:
        uri, cursor = self.open(text)
        return self.server.request(
            "textDocument/hover", {"textDocument": {"uri": uri}, "position": cursor}
        )

    def diagnostics(self, text: str, suffix: str = ".qrecipe.yaml") -> list[dict[str, Any]]:
        uri, _ = self.open(text, suffix)
        self.server.wait_for(lambda: uri in self.server.diagnostics, timeout=30)
        return self.server.diagnostics[uri]


@pytest.fixture(scope="module")
def editor(installed_server, tmp_path_factory) -> Iterator[Editor]:
    folder = tmp_path_factory.mktemp("editor")
    command = [str(installed_server), str(SERVER_SCRIPT), "--stdio"]
    with LanguageServer(command, HERE, _settings()) as server:
        server.request(
            "initialize",
            {
                "processId": None,
                "rootUri": folder.as_uri(),
                "capabilities": {
                    "workspace": {
                        "configuration": True,
                        "didChangeConfiguration": {"dynamicRegistration": True},
                    },
                    "textDocument": {
                        "completion": {
                            "completionItem": {
                                "snippetSupport": True,
                                "documentationFormat": ["markdown", "plaintext"],
                            }
                        },
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "publishDiagnostics": {},
                    },
                },
            },
        )
        server.notify("initialized", {})
        # The server pulls its settings (workspace/configuration) when told they changed, and
        # applies them asynchronously: a document with mistakes shows when they are in force.
        server.notify("workspace/didChangeConfiguration", {"settings": None})
        editor = Editor(server, folder)
        probe, _ = editor.open(MISTAKES)
        server.wait_for(lambda: bool(server.diagnostics.get(probe)), timeout=30)
        yield editor


def _documentation(item: dict[str, Any]) -> str:
    documentation = item.get("documentation") or ""
    return documentation["value"] if isinstance(documentation, dict) else documentation


def test_completion_in_a_quant_cfg_entry_offers_its_keys_with_descriptions(editor):
    items = {item["label"]: item for item in editor.completion(NEW_ENTRY)}
    for key in ("quantizer_name", "parent_class", "cfg", "enable"):
        assert key in items, sorted(items)
        assert items[key]["documentation"]["kind"] == "markdown"
        assert _documentation(items[key]).strip(), key
    assert "Wildcard pattern" in _documentation(items["quantizer_name"])
    assert "direct parent module" in _documentation(items["parent_class"])


def test_completion_inside_cfg_offers_the_quantizer_attributes(editor):
    items = {item["label"]: item for item in editor.completion(INSIDE_CFG)}
    assert set(items) >= QUANTIZER_ATTRIBUTES, sorted(QUANTIZER_ATTRIBUTES - set(items))
    assert "ExMy" in _documentation(items["num_bits"])


def test_hover_on_a_key_shows_its_markdown_description(editor):
    hover = editor.hover(MISTAKES.replace("num_bits", "num_<|>bits"))
    assert hover["contents"]["kind"] == "markdown"
    assert "**ExMy**" in hover["contents"]["value"]
    assert hover["range"]["start"] == {"line": 6, "character": 8}


def test_unknown_key_and_bad_number_format_are_diagnosed(editor):
    diagnostics = editor.diagnostics(MISTAKES)
    where = {
        (d["range"]["start"]["line"], d["range"]["start"]["character"]): d for d in diagnostics
    }
    assert set(where) == {(6, 18), (7, 8)}, diagnostics
    assert "pattern" in where[6, 18]["message"]
    assert "axiss is not allowed" in where[7, 8]["message"]


# Cross-field mistakes in cfgs written out in full (0-based lines 9, 14, 17 and 18), then the
# same keys in a cfg that imports a snippet, which may supply the other half: not flagged.
CROSS_FIELD = QUANT_CFG_HEAD.replace(
    "metadata:", "imports:\n  fp8: configs/numerics/fp8\nmetadata:"
) + (
    "    - quantizer_name: '*weight_quantizer'\n"
    "      cfg:\n"
    "        num_bits: e4m3\n"
    "        axis: 0\n"
    "        block_sizes: {-1: 16}\n"
    "    - quantizer_name: '*input_quantizer'\n"
    "      cfg:\n"
    "        num_bits: e3m2\n"
    "        block_sizes: {-1: 32, type: static}\n"
    "    - quantizer_name: '*k_bmm_quantizer'\n"
    "      cfg:\n"
    "        - num_bits: e5m2\n"
    "        - {num_bits: 8, use_constant_amax: true, constant_amax: 3.5}\n"
    "    - quantizer_name: '*output_quantizer'\n"
    "      cfg:\n"
    "        $import: fp8\n"
    "        num_bits: e3m2\n"
    "        axis: 0\n"
    "        block_sizes: {-1: 16}\n"
)


def test_cross_field_mistakes_in_a_written_out_cfg_are_diagnosed_where_they_are(editor):
    found = {
        (d["range"]["start"]["line"], d["range"]["start"]["character"]): d["message"]
        for d in editor.diagnostics(CROSS_FIELD)
    }
    assert found == {
        (9, 14): 'Incorrect type. Expected "null".',
        (14, 36): 'Value must be "dynamic".',
        (17, 10): 'Missing property "block_sizes".',
        (18, 64): 'Incorrect type. Expected "null".',
    }, found


@pytest.mark.parametrize(
    "cfg",
    [
        "        num_bits: e3m2\n        axis: 0\n        block_sizes: {-1: 32, type: static}\n",
        "        axis:\n",
        "        use_constant_amax: true\n        constant_amax: 2.0\n",
    ],
    ids=["with-mistakes", "axis-null", "constant-amax"],
)
def test_completion_and_hover_inside_a_cfg_the_rules_apply_to(editor, cfg):
    """The rules sit beside the keys' own definitions: a cfg they check still completes every
    other key with its documentation, and hovering a key still shows it."""
    head = QUANT_CFG_HEAD + "    - quantizer_name: '*weight_quantizer'\n      cfg:\n" + cfg
    items = {item["label"]: item for item in editor.completion(head + "        <|>\n")}
    written = {line.split(":")[0].strip() for line in cfg.splitlines()}
    assert set(items) >= QUANTIZER_ATTRIBUTES - written, sorted(QUANTIZER_ATTRIBUTES - set(items))
    assert "ExMy" in _documentation(items.get("num_bits") or items["narrow_range"]) or (
        "num_bits" in written
    )
    first_key = cfg.split(":")[0].strip()
    hover = editor.hover(
        head.replace(f"        {first_key}:", f"        {first_key[:2]}<|>{first_key[2:]}:", 1)
    )
    assert hover["contents"]["kind"] == "markdown"
    assert hover["range"]["start"] == {"line": 6, "character": 8}


def test_a_valid_recipe_has_no_diagnostics(editor):
    assert editor.diagnostics(VALID) == []


def test_modeline_selects_the_schema_for_any_file_name(editor):
    modeline = f"# yaml-language-server: $schema={(SCHEMA_DIR / 'recipe.schema.json').as_uri()}\n"
    assert editor.diagnostics(MISTAKES, suffix=".yaml") == []
    with_modeline = editor.diagnostics(modeline + MISTAKES, suffix=".yaml")
    assert {d["range"]["start"]["line"] for d in with_modeline} == {7, 8}


def test_two_document_list_snippets_are_checked_document_by_document(editor):
    header = "imports:\n  fp8: configs/numerics/fp8\n---\n"
    good = header + "- quantizer_name: '*input_quantizer'\n  cfg:\n    $import: fp8\n"
    assert editor.diagnostics(good) == []
    bad = header + "- quantizer_name: '*input_quantizer'\n  cfg:\n    num_bits: e4m3x\n"
    (diagnostic,) = editor.diagnostics(bad)
    assert diagnostic["range"]["start"] == {"line": 5, "character": 14}


def test_default_snippets_are_offered_for_entries(editor):
    items = {item["label"]: item for item in editor.completion(NEW_ENTRY)}
    for label, snippet in ENTRY_SNIPPETS.items():
        assert label in items, sorted(items)
        assert _documentation(items[label]) == snippet["description"]
    assert "quantizer_name:" in items["disable all"]["insertText"]


def _expand_snippet(text: str) -> str:
    """What an editor inserts for snippet syntax: placeholders become their default text."""
    text = re.sub(r"\$\{\d+:([^}]*)\}", r"\1", text)
    text = re.sub(r"\$\{?\d+\}?", "", text)
    return text.replace("\\$", "$")


def _apply(text: str, edit: dict[str, Any]) -> str:
    """Apply a completion's text edit the way editors do: new lines take the line's indent."""
    lines = text.split("\n")
    start, end = edit["range"]["start"], edit["range"]["end"]
    assert start["line"] == end["line"]
    line = lines[start["line"]]
    indent = line[: len(line) - len(line.lstrip())]
    inserted = _expand_snippet(edit["newText"]).replace("\n", "\n" + indent)
    lines[start["line"]] = line[: start["character"]] + inserted + line[end["character"] :]
    return "\n".join(lines)


def test_inserted_default_snippets_make_valid_recipes(editor, tmp_path):
    text = NEW_ENTRY.replace(CURSOR, "")
    snippets = [item for item in editor.completion(NEW_ENTRY) if item["label"] in ENTRY_SNIPPETS]
    assert len(snippets) == len(ENTRY_SNIPPETS)
    problems = {}
    for item in snippets:
        recipe = tmp_path / "snippet.qrecipe.yaml"
        recipe.write_text(_apply(text, item["textEdit"]))
        found = [d.format() for d in qrecipe.validate(recipe)]
        if found:
            problems[item["label"]] = found
    assert problems == {}
