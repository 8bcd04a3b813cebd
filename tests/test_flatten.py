"""The flat canonical form: defaults, normalisation, cross-field rules, fingerprint."""

import json

import pytest

import qrecipe
from helpers import RECIPE_HEAD, write_tree
from qrecipe import RecipeSemanticError, SchemaValidationError
from qrecipe.schema import attribute_defaults


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def make(quantize: str, head: str = RECIPE_HEAD) -> dict:
        write_tree(tmp_path, {"r.yaml": head + quantize})
        return qrecipe.resolve("r.yaml")

    return make


def test_every_attribute_is_filled_and_exmy_converted(recipe):
    flat = recipe(
        "quantize:\n  quant_cfg:\n    - quantizer_name: '*w'\n      cfg: {num_bits: E2M1, "
        "block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}\n"
    )
    (entry,) = flat["quantize"]["quant_cfg"]
    assert set(entry) == {"quantizer_name", "parent_class", "enable", "cfg"}
    assert len(entry["cfg"]) == 19
    assert entry["cfg"]["num_bits"] == [2, 1]
    assert entry["cfg"]["block_sizes"] == {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]}
    assert {k: v for k, v in entry["cfg"].items() if k not in ("num_bits", "block_sizes")} == {
        k: v for k, v in attribute_defaults().items() if k not in ("num_bits", "block_sizes")
    }


def test_defaults_come_from_the_published_schema():
    assert attribute_defaults()["num_bits"] == 8
    assert attribute_defaults()["trt_high_precision_dtype"] == "Float"
    assert len(attribute_defaults()) == 19


@pytest.mark.parametrize(
    ("written", "flat"),
    [
        ("  algorithm: max\n", {"method": "max"}),
        ("  algorithm:\n", None),
        ("", {"method": "max"}),
        (
            "  algorithm: {method: awq_lite, alpha_step: 0.1}\n",
            {"method": "awq_lite", "alpha_step": 0.1},
        ),
    ],
)
def test_algorithm_forms(recipe, written, flat):
    result = recipe(
        "quantize:\n" + written + "  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n"
    )
    assert result["quantize"]["algorithm"] == flat


def test_cfg_list_and_toggle_entries(recipe):
    flat = recipe(
        "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n"
        "    - quantizer_name: '*weight_quantizer'\n      cfg: [{num_bits: 4, block_sizes: {-1: "
        "128}}, {num_bits: e4m3}]\n"
        "    - {quantizer_name: '*', parent_class: nn.Embedding, cfg: {}, enable: false}\n"
    )
    toggle, sequence, embedding = flat["quantize"]["quant_cfg"]
    assert (toggle["cfg"], toggle["enable"]) == (None, False)
    assert [c["num_bits"] for c in sequence["cfg"]] == [4, [4, 3]]
    assert sequence["enable"] is True
    assert (embedding["cfg"], embedding["parent_class"]) == (None, "nn.Embedding")


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("{quantizer_name: '*', cfg: {}}", "empty 'cfg'"),
        ("{quantizer_name: '*', cfg: [{}], enable: true}", "empty 'cfg'"),
        ("{quantizer_name: '*', cfg: {enable: true}}", "gives no attribute"),
        ("{quantizer_name: '*'}", "neither 'cfg' nor 'enable'"),
    ],
)
def test_entry_rules(recipe, entry, words):
    with pytest.raises(RecipeSemanticError) as caught:
        recipe(f"quantize:\n  quant_cfg:\n    - {entry}\n")
    d = caught.value.first
    assert words in d.message
    assert (d.file, d.line) == ("r.yaml", 6)


def test_cross_field_rules_from_the_flat_schema_point_at_the_source(recipe):
    with pytest.raises(SchemaValidationError) as caught:
        recipe(
            "quantize:\n  quant_cfg:\n    - quantizer_name: '*'\n      cfg: {num_bits: e4m3, axis: "
            "0, block_sizes: {-1: 16}}\n"
        )
    d = caught.value.first
    assert (d.file, d.line, d.column, d.pointer) == (
        "r.yaml",
        7,
        35,
        "/quantize/quant_cfg/0/cfg/axis",
    )
    assert d.message == "expected null, got an integer 0"
    assert "axis: null" in d.hint


def test_small_float_formats_need_dynamic_blocks(recipe):
    with pytest.raises(SchemaValidationError):
        recipe("quantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {num_bits: e3m2}}\n")
    ok = recipe(
        "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {num_bits: e3m2, block_sizes: "
        "{-1: 32, type: dynamic, scale_bits: e8m0}}}\n"
    )
    assert ok["quantize"]["quant_cfg"][0]["cfg"]["num_bits"] == [3, 2]


def test_missing_quant_cfg_is_an_error(recipe):
    with pytest.raises(RecipeSemanticError, match="no 'quant_cfg'"):
        recipe("quantize:\n  algorithm: max\n")


def test_fingerprint_covers_semantics_not_description(recipe, tmp_path):
    body = "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n"
    first = recipe(body)
    reworded = recipe(body, head="metadata:\n  recipe_type: ptq\n  description: other words\n")
    changed = recipe(body.replace("false", "true"))
    assert first["fingerprint"] == reworded["fingerprint"] != changed["fingerprint"]
    assert first["fingerprint"] == qrecipe.fingerprint(first)


def test_output_is_deterministic_and_round_trips(recipe):
    flat = recipe(
        "quantize:\n  quant_cfg:\n    - {quantizer_name: 'é*', cfg: {num_bits: 8, effective_bits: "
        "4.25}}\n"
    )
    text = qrecipe.pretty_json(flat)
    assert json.loads(text) == flat
    assert qrecipe.canonical_bytes(json.loads(text)) == qrecipe.canonical_bytes(flat)
    assert text == qrecipe.pretty_json(
        recipe(
            "quantize:\n  quant_cfg:\n    - {quantizer_name: 'é*', cfg: {effective_bits: 4.25, "
            "num_bits: 8}}\n"
        )
    )


def test_provenance_records_file_line_and_chain(recipe, tmp_path):
    write_tree(tmp_path, {"u.yaml": "- {quantizer_name: '*', enable: false}\n"})
    write_tree(
        tmp_path,
        {"r.yaml": RECIPE_HEAD + "imports: {u: u}\nquantize:\n  quant_cfg:\n    - $import: u\n"},
    )
    flat = qrecipe.resolve("r.yaml", provenance=True)
    assert flat["provenance"]["entries"] == [
        {"file": "u.yaml", "line": 1, "chain": ["r.yaml", "u.yaml"]}
    ]
    assert flat["fingerprint"] == qrecipe.fingerprint(flat)
    assert qrecipe.load_flat(flat)["provenance"]["recipe"] == "r.yaml"


def test_load_flat_rejects_tampering(recipe, tmp_path):
    flat = recipe("quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n")
    flat["quantize"]["quant_cfg"][0]["enable"] = True
    with pytest.raises(qrecipe.FingerprintMismatchError, match="regenerate"):
        qrecipe.load_flat(flat)
    path = tmp_path / "bad.flat.json"
    path.write_text('{\n  "fingerprint": "sha256:00",\n  "metadata": {}\n}\n')
    with pytest.raises(SchemaValidationError) as caught:
        qrecipe.load_flat(path)
    assert caught.value.first.line is not None
