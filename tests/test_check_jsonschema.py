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
