"""The compiled fast path must accept exactly what the detailed (python-jsonschema) path accepts."""

import json
from pathlib import Path

import jsonschema

from qrecipe.language import schemacheck
from qrecipe.language.errors import RecipeError
from qrecipe.language.yamlio import parse_yaml

ROOT = Path(__file__).parent
DOCUMENTS = sorted(
    path for path in (ROOT / "vectors" / "cases").rglob("*.y*ml") if path.is_file()
) + sorted((ROOT / "golden").glob("*.json"))


def documents():
    for path in DOCUMENTS:
        try:
            for doc in parse_yaml(path.read_bytes(), path.name):
                yield path, doc.data
        except RecipeError:
            continue


def test_fast_and_reference_validators_agree_on_every_test_document():
    recipe = schemacheck.validator_for("recipe")
    flat = schemacheck.validator_for("flat")
    checked = disagreements = 0
    for path, data in documents():
        name, reference = ("flat", flat) if path.suffix == ".json" else ("recipe", recipe)
        checked += 1
        if schemacheck.is_valid(data, name) != reference.is_valid(data):
            disagreements += 1
            print(path, json.dumps(data)[:200])
    assert checked > 300
    assert disagreements == 0


def test_invalid_documents_get_detailed_diagnostics_from_the_reference_validator():
    bad = {"num_bits": "e4m3", "axsi": 0}
    assert not schemacheck.is_valid(bad, "recipe", "attributes_snippet")
    diagnostics = schemacheck.schema_diagnostics(bad, None, "x.yaml")
    assert diagnostics[0].hint == 'did you mean "axis"?'


def test_patterns_end_at_the_very_end_as_in_ecma_262():
    # Python's `$` also matches before a final newline; JSON Schema's does not.
    assert jsonschema.Draft202012Validator({"pattern": "^a$"}).is_valid("a\n")
    assert not schemacheck.validator_for("recipe", "attributes_snippet").is_valid(
        {"num_bits": "e4m3\n"}
    )
    assert schemacheck.validator_for("recipe", "attributes_snippet").is_valid({"num_bits": "e4m3"})
