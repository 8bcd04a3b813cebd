"""The schema catalog (SchemaStore format) points at the published schemas."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

from qrecipe.schema import schema_id, schema_text

CATALOG = json.loads(schema_text("catalog"))
ENTRIES = {Path(entry["url"]).name: entry for entry in CATALOG["schemas"]}


def test_catalog_is_in_schemastore_format():
    assert CATALOG["$schema"] == "https://json.schemastore.org/schema-catalog.json"
    assert CATALOG["version"] == 1
    for entry in CATALOG["schemas"]:
        assert set(entry) == {"name", "description", "fileMatch", "url"}
        assert all(isinstance(entry[key], str) and entry[key] for key in ("name", "description"))
        assert entry["fileMatch"], entry


@pytest.mark.parametrize("name", ["recipe", "flat"])
def test_catalog_urls_are_the_schema_ids(name):
    entry = ENTRIES[f"{name}.schema.json"]
    assert entry["url"] == schema_id(name)


@pytest.mark.parametrize(
    ("file", "schema"),
    [
        ("recipes/fp8.qrecipe.yaml", "recipe.schema.json"),
        ("fp8.qrecipe.yml", "recipe.schema.json"),
        ("recipes/fp8.qrecipe.flat.json", "flat.schema.json"),
    ],
)
def test_catalog_file_patterns(file, schema):
    matched = [
        url_name
        for url_name, entry in ENTRIES.items()
        if any(fnmatch(Path(file).name, pattern) for pattern in entry["fileMatch"])
    ]
    assert matched == [schema]


def test_editor_docs_show_the_catalog_as_published():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "editor.md").read_text()
    shown = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", docs, re.S)
        if "schema-catalog.json" in block
    ]
    assert shown == [CATALOG]
