"""The lint rules that need no model: each finds its mistake at the entry, and only there."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import qrecipe
from helpers import write_tree
from qrecipe.review import RULES, UnknownRuleError, lint, read_recipe

HEAD = """\
imports:
  fp8: configs/numerics/fp8
  nvfp4: configs/numerics/nvfp4
  base_disable_all: configs/ptq/units/base_disable_all
metadata:
  recipe_type: ptq
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
"""
# Line 11 onward holds the entries each test adds.


def findings(tmp_path, entries: str, *, head: str = HEAD, ignore=()):
    write_tree(tmp_path, {"r.yaml": head + entries})
    recipe = read_recipe(tmp_path / "r.yaml")
    return [(d.code, d.line, d.column, d.message, d.hint) for d in lint(recipe, ignore=ignore)]


GOOD = """\
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
    - quantizer_name: '*input_quantizer'
      cfg:
        $import: fp8
    - quantizer_name: '*lm_head*'
      enable: false
"""


def test_a_sound_recipe_has_no_findings(tmp_path):
    assert findings(tmp_path, GOOD) == []


def test_a_pattern_naming_a_module_can_never_match(tmp_path):
    found = findings(tmp_path, GOOD + "    - {quantizer_name: '*mlp.down_proj', enable: false}\n")
    ((code, line, column, message, hint),) = found
    assert (code, line, column) == ("unmatchable-pattern", 19, 7)
    assert message.startswith("entry 4 ('*mlp.down_proj') can never match")
    assert hint.startswith("did you mean '*mlp.down_proj.*'?")


def test_a_role_without_its_suffix_gets_the_suffix_suggested(tmp_path):
    (found,) = findings(tmp_path, "    - {quantizer_name: '*q_proj*weight', enable: true}\n")
    assert found[0] == "unmatchable-pattern"
    assert found[4].startswith("did you mean '*q_proj*weight_quantizer'?")


def test_a_duplicate_is_reported_where_it_repeats(tmp_path):
    found = findings(tmp_path, GOOD + "    - quantizer_name: '*lm_head*'\n      enable: false\n")
    ((code, line, column, message, _),) = found
    assert (code, line, column) == ("duplicate-entry", 19, 7)
    assert (
        message
        == "entry 4 ('*lm_head*') repeats entry 3 ('*lm_head*') at "
        + str(tmp_path / "r.yaml")
        + ":17"
    )


def test_an_entry_overridden_everywhere_is_shadowed(tmp_path):
    entries = (
        "    - quantizer_name: '*q_proj*weight_quantizer'\n"  # 11: NVFP4 for q_proj only...
        "      cfg:\n        $import: nvfp4\n"
        + GOOD  # 14: ...then every weight is FP8: the first entry decides nothing
    )
    ((code, line, column, message, hint),) = findings(tmp_path, entries)
    assert (code, line, column) == ("shadowed-entry", 11, 7)
    assert "later entries replace its cfg and enable on every quantizer it matches" in message
    assert "entry 2 ('*weight_quantizer') at" in message
    assert hint == "delete it, or move it after the entries that override it"


def test_a_cfg_survives_a_later_entry_that_only_switches(tmp_path):
    entries = GOOD + "    - {quantizer_name: '*weight_quantizer', enable: false}\n"
    # The FP8 cfg of entry 1 stays on the weight quantizers; only enable is decided again.
    assert findings(tmp_path, entries) == []


def test_a_union_of_later_entries_can_shadow_an_entry(tmp_path):
    entries = (
        "    - {quantizer_name: '*[kv]_bmm_quantizer', enable: true}\n"
        "    - {quantizer_name: '*k_bmm_quantizer', enable: false}\n"
        "    - {quantizer_name: '*v_bmm_quantizer', enable: false}\n"
    )
    ((code, line, *_),) = findings(tmp_path, entries)
    assert (code, line) == ("shadowed-entry", 11)


def test_a_class_specific_entry_does_not_shadow_a_general_one(tmp_path):
    entries = GOOD + "    - {quantizer_name: '*', parent_class: nn.Linear, enable: false}\n"
    assert findings(tmp_path, entries) == []


def test_a_recipe_that_does_not_start_from_disabling_everything(tmp_path):
    head = HEAD.replace("    - $import: base_disable_all\n", "")
    ((code, line, column, message, hint),) = findings(tmp_path, GOOD, head=head)
    assert (code, line, column) == ("missing-base-disable", 10, 5)  # where quant_cfg starts
    assert "keep the default 8-bit integer format, enabled" in message
    assert "base_disable_all" in hint


def test_rules_can_be_ignored_and_unknown_ids_are_refused(tmp_path):
    entries = GOOD + "    - {quantizer_name: '*lm_head', enable: false}\n"
    assert findings(tmp_path, entries, ignore=["unmatchable-pattern"]) == []
    with pytest.raises(UnknownRuleError, match="unknown rule no-such-rule; the rules are"):
        findings(tmp_path, entries, ignore=["no-such-rule"])


def test_every_finding_is_located_in_the_file_that_holds_the_entry(tmp_path):
    write_tree(
        tmp_path,
        {
            "units/dup.yaml": "- quantizer_name: '*lm_head*'\n  enable: false\n",
            "r.yaml": HEAD.replace("  base_disable_all:", "  dup: units/dup\n  base_disable_all:")
            + GOOD
            + "    - $import: dup\n",
        },
    )
    (found,) = lint(read_recipe(tmp_path / "r.yaml", path=[tmp_path]))
    assert (found.code, found.file, found.line, found.column) == (
        "duplicate-entry",
        f"{tmp_path}:units/dup.yaml",  # as every message names files under a search root
        1,
        3,
    )
    assert found.chain == (f"{tmp_path}:r.yaml", f"{tmp_path}:units/dup.yaml")


def test_builtin_recipes_lint_clean_but_for_two_known_duplicates():
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in qrecipe.list_recipes():
            for diagnostic in lint(read_recipe(info.name)):
                found.setdefault(info.name, []).append(diagnostic.code)
    # This recipe disables the vision tower again after the shared exclusions already did.
    assert found == {"general/ptq/nvfp4_mlp_only-novit-kv_fp8": ["duplicate-entry"] * 2}


def test_a_flat_file_with_provenance_points_back_at_its_yaml(tmp_path):
    write_tree(
        tmp_path, {"r.yaml": HEAD + GOOD + "    - {quantizer_name: lm_head, enable: false}\n"}
    )
    flat = qrecipe.resolve(tmp_path / "r.yaml", provenance=True)
    (tmp_path / "r.flat.json").write_text(qrecipe.pretty_json(flat))
    (found,) = lint(read_recipe(tmp_path / "r.flat.json"))
    assert (found.code, found.file, found.line) == (
        "unmatchable-pattern",
        str(tmp_path / "r.yaml"),
        19,
    )
    del flat["provenance"]
    (tmp_path / "bare.flat.json").write_text(qrecipe.pretty_json(flat))
    (found,) = lint(read_recipe(tmp_path / "bare.flat.json"))
    assert (found.file, found.line, found.pointer) == (
        str(tmp_path / "bare.flat.json"),
        None,
        "/quantize/quant_cfg/4",
    )


def test_rules_are_described_once_each():
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert all(rule.level in ("error", "warning") and rule.summary for rule in RULES)


def test_lint_without_a_model_never_imports_torch(tmp_path):
    write_tree(tmp_path, {"r.yaml": HEAD + GOOD})
    code = (
        "import sys\n"
        "from qrecipe.cli import main\n"
        f"status = main(['lint', {str(tmp_path / 'r.yaml')!r}])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'triton', 'numpy') if m in "
        "sys.modules)\n"
        "print(status, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "0 []"
