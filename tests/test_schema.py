"""The published schemas: valid, standalone, documented for editors, and consistent."""

import json
from pathlib import Path

import jsonschema
import pytest

import qrecipe
from qrecipe.schema import SCHEMA_NAMES, load_schema, schema_text

SCHEMA_DIR = Path(qrecipe.__file__).parent / "schema"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12_with_a_versioned_id(name):
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://qrecipe.dev/schema/v1/{name}.schema.json"
    assert json.loads(schema_text(name)) == schema


def _properties(node, path=""):
    """Every (path, property schema) pair in a schema tree."""
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield f"{path}/properties/{key}", value
        for key, value in node.items():
            if key in ("if", "then", "not"):
                continue  # conditions restate properties documented where they are defined
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{path}/{index}")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_property_is_documented_for_people_and_editors(name):
    missing = []
    for path, prop in _properties(load_schema(name)):
        if set(prop) <= {"$ref"}:
            continue
        for keyword in ("title", "description", "markdownDescription"):
            if keyword not in prop:
                missing.append(f"{path}: {keyword}")
    assert not missing, "\n".join(missing[:20])


def test_authoring_attributes_have_defaults_and_examples():
    attributes = load_schema("recipe")["$defs"]["attribute_keywords"]["properties"]
    for name, prop in attributes.items():
        if name == "$import":
            continue
        assert "default" in prop, name
        assert prop.get("examples"), name


def test_flat_and_authoring_schemas_agree_on_attributes():
    authoring = load_schema("recipe")["$defs"]["attribute_keywords"]["properties"]
    flat = load_schema("flat")["$defs"]["attributes"]["properties"]
    assert set(flat) == set(authoring) - {"$import"}
    for name, prop in flat.items():
        assert prop["default"] == authoring[name]["default"], name
        if "enum" in prop:
            assert prop["enum"] == authoring[name]["enum"], name


def test_schema_validates_standalone_without_a_registry():
    # Third-party validators get the file alone: every $ref must be internal.
    validator = jsonschema.Draft202012Validator(load_schema("recipe"))
    recipe = {
        "metadata": {"recipe_type": "ptq"},
        "quantize": {
            "quant_cfg": [{"quantizer_name": "*", "cfg": {"num_bits": "e4m3", "axsi": 0}}]
        },
    }
    errors = list(validator.iter_errors(recipe))
    assert len(errors) == 1
    assert "axsi" in errors[0].message
    assert '"$ref": "http' not in schema_text("recipe")
    assert '"$ref": "http' not in schema_text("flat")


@pytest.mark.parametrize(
    ("document", "valid"),
    [
        ([{"quantizer_name": "*", "enable": False}], True),
        ({"imports": {"fp8": "configs/numerics/fp8"}}, True),
        ({"num_bits": "e4m3", "axis": None}, True),
        ({"num_bits": "e4m3", "axsi": None}, False),
        ({"method": "mse", "fp8_scale_sweep": True}, True),
        ({"method": "mse", "alpha_step": 0.1}, False),
        ({"method": "awq_lite", "alpha_step": 0.1}, True),
        ({"recipe_type": "ptq"}, True),
        ({"quant_cfg": [], "algorithm": None}, True),
        ({"quantizer_name": "*lm_head*", "enable": False}, True),
        ({"metadata": {"recipe_type": "qat"}, "quantize": {"quant_cfg": []}}, False),
        ([{"enable": False}], False),
    ],
)
def test_shape_dispatch_of_the_top_level_schema(document, valid):
    validator = jsonschema.Draft202012Validator(load_schema("recipe"))
    assert validator.is_valid(document) is valid


def test_schema_cli_prints_the_published_text(capsys):
    from qrecipe.cli import main

    assert main(["schema", "flat"]) == 0
    assert capsys.readouterr().out == (SCHEMA_DIR / "flat.schema.json").read_text()
