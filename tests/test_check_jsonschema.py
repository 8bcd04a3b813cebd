"""The published schemas work with the generic check-jsonschema tool (and its pre-commit hook).

check-jsonschema reads one YAML document per file, so it covers recipes and single-document
snippets; two-document list snippets need ``qrecipe validate``, as docs/pre-commit.md says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import qrecipe
from helpers import BAD_RECIPE, FP8_SNIPPET

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "src" / "qrecipe" / "schema"
RECIPE_SCHEMA = SCHEMA_DIR / "recipe.schema.json"
FLAT_SCHEMA = SCHEMA_DIR / "flat.schema.json"

GOOD_RECIPE = """\
metadata:
  recipe_type: ptq
  description: NVFP4 weights, FP8 activations.
quantize:
  algorithm: max
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg:
        num_bits: e2m1
        block_sizes:
          -1: 16
          type: dynamic
          scale_bits: e4m3
    - quantizer_name: '*input_quantizer'
      cfg:
        num_bits: e4m3
        axis:
"""


LIST_SNIPPET = """\
imports: {}
---
- quantizer_name: '*lm_head*'
  enable: false
"""


def check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def _needs_check_jsonschema():
    pytest.importorskip("check_jsonschema")


def test_recipe_schema_accepts_recipes_and_snippets(tmp_path):
    recipe = tmp_path / "nvfp4.qrecipe.yaml"
    recipe.write_text(GOOD_RECIPE)
    snippet = tmp_path / "fp8.yaml"
    snippet.write_text(FP8_SNIPPET)
    result = check_jsonschema(RECIPE_SCHEMA, recipe, snippet)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_recipe_schema_rejects_a_bad_recipe_with_useful_messages(tmp_path):
    recipe = tmp_path / "bad.qrecipe.yaml"
    recipe.write_text(BAD_RECIPE)
    result = check_jsonschema(RECIPE_SCHEMA, recipe)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "$.quantize.quant_cfg[0].cfg.num_bits: 'e4m3x'" in output
    assert "'axiss' was unexpected" in output


def test_list_snippets_need_qrecipe_validate(tmp_path):
    snippet = tmp_path / "exclusions.yaml"
    snippet.write_text(LIST_SNIPPET)
    result = check_jsonschema(RECIPE_SCHEMA, snippet)
    assert result.returncode != 0
    assert "expected a single document" in result.stdout + result.stderr
    assert qrecipe.validate(snippet) == []


def test_flat_schema_accepts_a_resolved_recipe_and_rejects_an_edited_one(tmp_path):
    recipe = tmp_path / "nvfp4.yaml"
    recipe.write_text(GOOD_RECIPE)
    flat = qrecipe.resolve(recipe)
    good = tmp_path / "nvfp4.flat.json"
    good.write_text(qrecipe.pretty_json(flat))

    edited = json.loads(good.read_text())
    edited["quantize"]["quant_cfg"][1]["cfg"]["num_bits"] = "e2m1"
    bad = tmp_path / "edited.flat.json"
    bad.write_text(json.dumps(edited, indent=2))

    result = check_jsonschema(FLAT_SCHEMA, good)
    assert result.returncode == 0, result.stdout + result.stderr
    result = check_jsonschema(FLAT_SCHEMA, bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "$.quantize.quant_cfg[1].cfg.num_bits" in result.stdout + result.stderr


# Each cfg written out in full (no $import) breaks one cross-field rule; the last cfg writes the
# same keys as the first beside an $import, which the schema leaves to qrecipe validate.
CROSS_FIELD_MISTAKES = """\
imports:
  fp8: configs/numerics/fp8
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - quantizer_name: '*weight_quantizer'
      cfg:
        num_bits: e4m3
        axis: 0
        block_sizes: {-1: 16}
    - quantizer_name: '*input_quantizer'
      cfg:
        num_bits: e3m2
        block_sizes: {-1: 32, type: static}
    - quantizer_name: '*k_bmm_quantizer'
      cfg:
        - num_bits: E5M2
        - {num_bits: 8, use_constant_amax: true, constant_amax: 3.5}
    - quantizer_name: '*v_bmm_quantizer'
      cfg: {num_bits: [3, 2], block_sizes: null}
    - quantizer_name: '*output_quantizer'
      cfg:
        $import: fp8
        axis: 0
        block_sizes: {-1: 16}
"""


def test_recipe_schema_rejects_cross_field_mistakes_in_written_out_cfgs(tmp_path):
    recipe = tmp_path / "cross.qrecipe.yaml"
    recipe.write_text(CROSS_FIELD_MISTAKES)
    result = check_jsonschema(RECIPE_SCHEMA, recipe)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "$.quantize.quant_cfg[0].cfg.axis: 0 is not of type 'null'" in output
    assert "$.quantize.quant_cfg[1].cfg.block_sizes.type: 'dynamic' was expected" in output
    assert "$.quantize.quant_cfg[2].cfg[0]: 'block_sizes' is a required property" in output
    assert "$.quantize.quant_cfg[2].cfg[1].constant_amax: 3.5 is not of type 'null'" in output
    assert "$.quantize.quant_cfg[3].cfg.block_sizes: None is not of type 'object'" in output
    assert "quant_cfg[4]" not in output
    problems = qrecipe.validate(recipe)
    assert [(d.line, d.pointer) for d in problems] == [
        (10, "/quantize/quant_cfg/0/cfg/axis"),
        (15, "/quantize/quant_cfg/1/cfg/block_sizes/type"),
        (18, "/quantize/quant_cfg/2/cfg/0"),
        (19, "/quantize/quant_cfg/2/cfg/1/constant_amax"),
        (21, "/quantize/quant_cfg/3/cfg/block_sizes"),
        # The schema leaves a cfg with $import alone (the snippet could supply the other half);
        # validate resolves it, once the entries above are left out, and finds the mistake.
        (25, "/quantize/quant_cfg/4/cfg/axis"),
    ]


@pytest.mark.parametrize(
    "cfg",
    [
        "{num_bits: e5m2, block_sizes: {-1: 32, type: dynamic, scale_bits: e8m0}}",
        "{num_bits: e04m03, axis: 0}",
        "{num_bits: [2, 1], block_sizes: {-1: 16, type: static}}",
        "{num_bits: 4, block_sizes: {-1: 128}, axis: null}",
        "{use_constant_amax: true, constant_amax: null}",
        "{$import: fp8, num_bits: e5m2}",
    ],
)
def test_recipe_schema_accepts_cfgs_that_keep_the_cross_field_rules(tmp_path, cfg):
    recipe = tmp_path / "fine.qrecipe.yaml"
    recipe.write_text(
        CROSS_FIELD_MISTAKES.split("    - quantizer_name")[0]
        + f"    - quantizer_name: '*weight_quantizer'\n      cfg: {cfg}\n"
    )
    result = check_jsonschema(RECIPE_SCHEMA, recipe)
    assert result.returncode == 0, result.stdout + result.stderr
