"""Import semantics of the resolver, positive and negative."""

import os
from pathlib import Path

import pytest

import qrecipe
from helpers import RECIPE_HEAD, write_tree
from qrecipe import (
    ImportCycleError,
    ImportKindError,
    ImportNotFoundError,
    PathEscapeError,
    RecipeLimitError,
    RecipeNotFoundError,
    RecipeSemanticError,
    SchemaValidationError,
)

FP8 = "num_bits: e4m3\naxis: null\n"


def entries(flat):
    return flat["quantize"]["quant_cfg"]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QRECIPE_PATH", raising=False)

    def make(files):
        return write_tree(tmp_path, files)

    return make


def test_dict_merge_order_and_inline_keys_win(tree):
    tree(
        {
            "a.yaml": "num_bits: 4\naxis: 0\nunsigned: true\n",
            "b.yaml": "num_bits: 8\nnarrow_range: true\n",
            "r.yaml": RECIPE_HEAD
            + """
quantize:
  quant_cfg:
    - quantizer_name: '*w'
      cfg:
        $import: [a, b]
        axis: 1
imports: {a: a, b: b}
""",
        }
    )
    cfg = entries(qrecipe.resolve("r.yaml"))[0]["cfg"]
    assert (cfg["num_bits"], cfg["axis"], cfg["unsigned"], cfg["narrow_range"]) == (
        8,
        1,
        True,
        True,
    )


def test_list_splice_dict_entry_and_entry_merge(tree):
    tree(
        {
            "units/off.yaml": "- {quantizer_name: '*', enable: false}\n- {quantizer_name: "
            "'*lm_head*', enable: false}\n",
            "units/one.yaml": "quantizer_name: '*router*'\nenable: false\n",
            "fp8.yaml": FP8,
            "entry.yaml": "imports: {fp8: fp8}\nquantizer_name: '*x*'\ncfg: {$import: fp8}\n",
            "r.yaml": RECIPE_HEAD
            + """
imports: {disable: units/off, one: units/one, entry: entry}
quantize:
  quant_cfg:
    - $import: disable
    - $import: one
    - {$import: entry, quantizer_name: '*mlp*'}
""",
        }
    )
    names = [e["quantizer_name"] for e in entries(qrecipe.resolve("r.yaml"))]
    assert names == ["*", "*lm_head*", "*router*", "*mlp*"]
    assert entries(qrecipe.resolve("r.yaml"))[3]["cfg"]["num_bits"] == [4, 3]


def test_two_document_list_snippet_with_its_own_imports(tree):
    tree(
        {
            "numerics/fp8.yaml": FP8,
            "units/kv.yaml": "imports:\n  fp8: numerics/fp8\n---\n- quantizer_name: "
            "'*[kv]_bmm_quantizer'\n  cfg: {$import: fp8}\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {kv: units/kv}\nquantize:\n  quant_cfg:\n    - $import: kv\n",
        }
    )
    (entry,) = entries(qrecipe.resolve("r.yaml"))
    assert entry["cfg"]["num_bits"] == [4, 3]
    assert entry["enable"] is True


def test_imports_are_scoped_to_their_file(tree):
    tree(
        {
            "fp8.yaml": FP8,
            "unit.yaml": "imports: {fp8: fp8}\n---\n- {quantizer_name: '*w', cfg: {$import: "
            "fp8}}\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {unit: unit}\nquantize:\n  quant_cfg:\n    - $import: unit\n    - {quantizer_name: '*i', cfg: {$import: fp8}}\n",
        }
    )
    with pytest.raises(ImportNotFoundError) as caught:
        qrecipe.resolve("r.yaml")
    d = caught.value.first
    assert (d.file, d.line, d.pointer) == ("r.yaml", 8, "/quantize/quant_cfg/1/cfg/$import")
    assert "declares" in d.hint or "declared" in d.hint


def test_cycle_names_the_whole_chain(tree):
    tree(
        {
            "a.yaml": "imports: {b: b}\n$import: b\nnum_bits: 8\n",
            "b.yaml": "imports: {a: a}\n$import: a\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {a: a}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: a}}\n",
        }
    )
    with pytest.raises(ImportCycleError) as caught:
        qrecipe.resolve("r.yaml")
    d = caught.value.first
    assert d.message == "import cycle: r.yaml -> a.yaml -> b.yaml -> a.yaml"
    assert (d.file, d.line) == ("b.yaml", 2)


def test_self_import_is_a_cycle(tree):
    tree(
        {
            "s.yaml": "imports: {s: s}\n$import: s\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {s: s}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: s}}\n",
        }
    )
    with pytest.raises(ImportCycleError, match=r"s\.yaml -> s\.yaml"):
        qrecipe.resolve("r.yaml")


def test_missing_snippet_points_at_the_imports_entry(tree):
    tree(
        {
            "r.yaml": RECIPE_HEAD
            + "imports:\n  gone: snippets/gone\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: gone}}\n"
        }
    )
    with pytest.raises(ImportNotFoundError) as caught:
        qrecipe.resolve("r.yaml")
    d = caught.value.first
    assert (d.file, d.line, d.pointer) == ("r.yaml", 5, "/imports/gone")
    assert "--path" in d.hint


def test_every_import_problem_of_a_file_is_reported_at_once(tree):
    root = tree(
        {
            "snippets/fp8.yaml": FP8,
            "r.yaml": RECIPE_HEAD
            + "imports:\n"
            + "  fp8: configs/numerics/fp88\n"  # line 5: a built-in snippet, misspelt
            + "  mine: snippets/fp9\n"  # line 6: a local snippet, misspelt
            + "  ok: snippets/fp8\n"
            + "quantize:\n  quant_cfg:\n"
            + "    - {quantizer_name: '*w*', cfg: {$import: ok}}\n"
            + "    - {quantizer_name: '*i*', cfg: {$import: [ok, okk]}}\n",  # line 11: undeclared
        }
    )
    problems = qrecipe.validate("r.yaml")
    assert [(d.code, d.line, d.pointer) for d in problems] == [
        ("import-not-found", 5, "/imports/fp8"),
        ("import-not-found", 6, "/imports/mine"),
        ("import-not-found", 11, "/quantize/quant_cfg/1/cfg/$import/1"),
    ]
    assert problems[0].hint.startswith('did you mean "configs/numerics/fp8"? searched ')
    assert problems[1].hint.startswith('did you mean "snippets/fp8"? searched ')
    # The working directory is named, not shown as ".".
    assert f"searched the current directory ({root.resolve()}) first" in problems[1].hint
    assert problems[2].hint == 'did you mean "ok"?'


def test_semantic_and_cross_field_problems_of_different_entries_are_reported_together(tree):
    tree(
        {
            "snippets/fp8.yaml": FP8,
            "r.yaml": RECIPE_HEAD
            + "imports:\n  fp8: snippets/fp8\n"
            + "quantize:\n  quant_cfg:\n"
            + "    - quantizer_name: '*weight_quantizer'\n"
            + "      cfg:\n        $import: fp8\n        axis: 0\n        block_sizes: {-1: 16}\n"
            + "    - {quantizer_name: '*a*', cfg: {}}\n",
        }
    )
    problems = qrecipe.validate("r.yaml")
    assert [(d.code, d.line, d.pointer) for d in problems] == [
        ("semantic", 13, "/quantize/quant_cfg/1/cfg"),  # an empty cfg
        ("schema", 11, "/quantize/quant_cfg/0/cfg/axis"),  # axis with block_sizes, after $import
    ]


def test_a_misspelt_builtin_recipe_name_gets_the_name_it_probably_meant(tree):
    tree({})
    with pytest.raises(RecipeNotFoundError) as caught:
        qrecipe.resolve("general/ptq/fp8_defalt-kv_fp8")
    assert caught.value.first.hint.startswith(
        "did you mean 'general/ptq/fp8_default-kv_fp8'? searched builtin, the current directory ("
    )


@pytest.mark.parametrize("target", ["../outside", "/etc/passwd", "a/../../b"])
def test_import_paths_may_not_escape_the_roots(tree, target):
    tree(
        {
            "r.yaml": RECIPE_HEAD
            + f"imports:\n  x: '{target}'\nquantize:\n  quant_cfg:\n    - {{quantizer_name: '*', cfg: {{$import: x}}}}\n"
        }
    )
    with pytest.raises(PathEscapeError) as caught:
        qrecipe.resolve("r.yaml")
    assert caught.value.first.line == 5


def test_symlink_escaping_the_root_is_refused(tree, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "fp8.yaml"
    outside.write_text(FP8)
    root = tree(
        {
            "r.yaml": RECIPE_HEAD
            + "imports: {x: link}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: x}}\n"
        }
    )
    os.symlink(outside, root / "link.yaml")
    with pytest.raises(PathEscapeError, match="outside the search root"):
        qrecipe.resolve("r.yaml")


def test_list_snippet_cannot_be_merged_into_a_mapping(tree):
    tree(
        {
            "l.yaml": "- {quantizer_name: '*', enable: false}\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {l: l}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: l}}\n",
        }
    )
    with pytest.raises(ImportKindError, match="list snippet"):
        qrecipe.resolve("r.yaml")


def test_wrong_dict_kind_is_refused(tree):
    tree(
        {
            "e.yaml": "quantizer_name: '*'\nenable: false\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {e: e}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: e}}\n",
        }
    )
    with pytest.raises(
        ImportKindError,
        match="quant_cfg entry snippet, but this place needs a quantizer-attributes snippet",
    ):
        qrecipe.resolve("r.yaml")


def test_errors_inside_a_snippet_name_the_snippet_and_the_chain(tree):
    tree(
        {
            "bad.yaml": "num_bits: 8\naxsi: 0\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {bad: bad}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: bad}}\n",
        }
    )
    with pytest.raises(SchemaValidationError) as caught:
        qrecipe.resolve("r.yaml")
    d = caught.value.first
    assert (d.file, d.line, d.column, d.pointer) == ("bad.yaml", 2, 1, "/axsi")
    assert d.hint == 'did you mean "axis"?'
    assert d.chain == ("r.yaml", "bad.yaml")


def test_quantize_section_import(tree):
    tree(
        {
            "preset.yaml": "algorithm: mse\nquant_cfg:\n  - {quantizer_name: '*', enable: false}\n",
            "r.yaml": RECIPE_HEAD + "imports: {p: preset}\nquantize:\n  $import: p\n",
        }
    )
    flat = qrecipe.resolve("r.yaml")
    assert flat["quantize"]["algorithm"] == {"method": "mse"}


@pytest.mark.parametrize("layout", ["recipe", "metadata"])
def test_directory_recipes(tree, layout):
    meta = "metadata:\n  recipe_type: ptq\n" if layout == "recipe" else "recipe_type: ptq\n"
    tree(
        {
            f"d/{layout}.yml": meta,
            "d/quantize.yaml": "quant_cfg:\n  - {quantizer_name: '*', enable: false}\n",
        }
    )
    flat = qrecipe.resolve("d")
    assert entries(flat) == [
        {"quantizer_name": "*", "parent_class": None, "enable": False, "cfg": None}
    ]
    assert flat["metadata"]["description"] == "Model optimization recipe."


def test_importer_root_is_searched_first(tree, tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib")
    write_tree(
        lib,
        {
            "n.yaml": "num_bits: 4\n",
            "r.yaml": RECIPE_HEAD
            + "imports: {n: n}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: n}}\n",
        },
    )
    tree({"n.yaml": "num_bits: 8\n"})  # same name in the working directory must not win
    flat = qrecipe.resolve(str(lib / "r.yaml"), path=[str(lib)])
    assert entries(flat)[0]["cfg"]["num_bits"] == 4


def test_names_resolve_through_path_and_environment(tree, tmp_path_factory, monkeypatch):
    lib = tmp_path_factory.mktemp("envlib")
    write_tree(
        lib,
        {
            "team/r.yaml": RECIPE_HEAD
            + "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n"
        },
    )
    with pytest.raises(RecipeNotFoundError):
        qrecipe.resolve("team/r")
    assert entries(qrecipe.resolve("team/r", path=[str(lib)]))[0]["enable"] is False
    monkeypatch.setenv("QRECIPE_PATH", str(lib))
    assert entries(qrecipe.resolve("team/r"))[0]["enable"] is False


def test_snippet_is_not_a_recipe(tree):
    tree({"s.yaml": FP8})
    with pytest.raises(RecipeSemanticError, match="quantizer-attributes snippet, not a recipe"):
        qrecipe.resolve("s.yaml")


def test_load_returns_the_expanded_tree_without_defaults(tree):
    tree(
        {
            "fp8.yaml": FP8,
            "r.yaml": RECIPE_HEAD
            + "imports: {fp8: fp8}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: fp8}}\n",
        }
    )
    loaded = qrecipe.load("r.yaml")
    assert loaded["quantize"]["quant_cfg"] == [
        {"quantizer_name": "*", "cfg": {"num_bits": "e4m3", "axis": None}}
    ]
    assert "imports" not in loaded


def test_validate_reports_every_problem_of_a_file(tree):
    tree(
        {
            "r.yaml": RECIPE_HEAD
            + "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enabel: false}\n    - {quantizer_name: '*', cfg: {num_bits: e4m3x, calibrator: maxx}}\n"
        }
    )
    problems = qrecipe.validate("r.yaml")
    assert [p.pointer for p in problems] == [
        "/quantize/quant_cfg/0/enabel",
        "/quantize/quant_cfg/1/cfg/num_bits",
        "/quantize/quant_cfg/1/cfg/calibrator",
    ]
    assert all(p.line == 6 or p.line == 7 for p in problems)


def test_schema_problems_do_not_hide_the_import_problems_of_the_same_file(tree):
    header = "imports: {fp8: configs/numerics/fp8, gone: snippets/gone}\n"
    tree(
        {
            "r.yaml": RECIPE_HEAD
            + "imports: {fp8: configs/numerics/fp8, gone: snippets/gone}\n"  # line 4
            + "quantize:\n  quant_cfg:\n"
            + "    - {quantizer_name: '*i*', cfg: {$import: fp9}}\n"  # line 7
            + "    - {quantizer_name: '*w*', cfg: {$import: fp8}, enabel: true}\n",  # line 8
            "unit.yaml": header + "---\n- {quantizer_name: '*w', cfg: {$import: fp8, axiss: 0}}\n",
            "bad_imports.yaml": RECIPE_HEAD
            + "imports: {fp8: 8}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: "
            "{$import: fp9}}\n",
        }
    )
    assert [(d.code, d.line, d.pointer) for d in qrecipe.validate("r.yaml")] == [
        ("import-not-found", 4, "/imports/gone"),
        ("import-not-found", 7, "/quantize/quant_cfg/0/cfg/$import"),
        ("schema", 8, "/quantize/quant_cfg/1/enabel"),
    ]
    # A two-document list snippet: the header's imports are checked beside the list's problems.
    assert [(d.code, d.line) for d in qrecipe.validate("unit.yaml")] == [
        ("import-not-found", 1),
        ("schema", 3),
    ]
    # A malformed import is left out; the other $import names are still checked against all
    # the declared names (the hint names the malformed one).
    problems = qrecipe.validate("bad_imports.yaml")
    assert [d.code for d in problems] == ["schema", "import-not-found"]
    assert problems[1].hint == 'did you mean "fp8"?'


def test_schema_problems_do_not_hide_semantic_problems_or_snippet_problems(tree):
    tree(
        {
            "r.yaml": RECIPE_HEAD
            + "imports: {w: snippets/w}\nquantize:\n  quant_cfg:\n"
            + "    - {quantizer_name: '*', enable: false}\n"  # line 7
            + "    - {quantizer_name: '*i*', enabel: true}\n"  # line 8
            + "    - {quantizer_name: '*o*', cfg: {}}\n"  # line 9
            + "    - $import: w\n",  # line 10
            "snippets/w.yaml": "imports: {n: snippets/none}\nquantizer_name: '*w*'\n"
            "cfg: {$import: n}\n",
            "valid_but_broken_snippet.yaml": RECIPE_HEAD
            + "imports: {w: snippets/w}\nquantize:\n  quant_cfg:\n"
            + "    - $import: w\n"
            + "    - {quantizer_name: '*o*', cfg: {enable: true}}\n",
            "only_broken.yaml": RECIPE_HEAD
            + "quantize:\n  quant_cfg:\n    - {quantizer_name: 5, enable: false}\n",
        }
    )
    assert [(d.code, d.file, d.line, d.pointer) for d in qrecipe.validate("r.yaml")] == [
        ("import-not-found", "snippets/w.yaml", 1, "/imports/n"),
        ("schema", "r.yaml", 8, "/quantize/quant_cfg/1/enabel"),
        ("semantic", "r.yaml", 9, "/quantize/quant_cfg/2/cfg"),
    ]
    # No schema problem: the entry importing the broken snippet is left out, the rest checked.
    found = qrecipe.validate("valid_but_broken_snippet.yaml")
    assert [(d.code, d.pointer) for d in found] == [
        ("import-not-found", "/imports/n"),
        ("semantic", "/quantize/quant_cfg/1/cfg"),
    ]
    # Leaving the only entry out leaves quant_cfg empty: that is not reported.
    assert [d.pointer for d in qrecipe.validate("only_broken.yaml")] == [
        "/quantize/quant_cfg/0/quantizer_name"
    ]
    # Resolving still stops at the first problem.
    with pytest.raises(qrecipe.ImportNotFoundError):
        qrecipe.resolve("valid_but_broken_snippet.yaml")


def test_validate_checks_snippets_with_their_imports(tree):
    tree(
        {
            "fp8.yaml": FP8,
            "unit.yaml": "imports: {fp8: fp9}\n---\n- {quantizer_name: '*w', cfg: {$import: "
            "fp8}}\n",
        }
    )
    (problem,) = qrecipe.validate("unit.yaml")
    assert problem.code == "import-not-found"
    assert (problem.file, problem.line) == ("unit.yaml", 1)


def test_validating_a_part_of_a_directory_recipe_validates_the_directory(tree):
    tree(
        {
            "d/recipe.yml": "metadata:\n  recipe_type: ptq\n",
            "d/quantize.yml": "quant_cfg:\n  - {quantizer_name: '*', enabel: false}\n",
        }
    )
    for part in ("d/recipe.yml", "d/quantize.yml"):
        (problem,) = qrecipe.validate(part)
        assert (problem.file, problem.line, problem.pointer) == (
            "d/quantize.yml",
            2,
            "/quant_cfg/0/enabel",
        )


def test_files_outside_every_root_are_named_by_absolute_path(tree, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    write_tree(
        elsewhere,
        {"r.yaml": RECIPE_HEAD + "quantize:\n  quant_cfg:\n    - {quantizer_name: '*'}\n"},
    )
    (problem,) = qrecipe.validate(str(elsewhere / "r.yaml"))
    assert problem.file == str((elsewhere / "r.yaml").resolve())


def test_renamed_snippet_names_still_import_with_a_warning(tree):
    tree(
        {
            "r.yaml": RECIPE_HEAD
            + "imports: {kv: configs/ptq/units/fp8_kv}\nquantize:\n  quant_cfg:\n    - $import: kv\n"
        }
    )
    with pytest.warns(qrecipe.RecipeDeprecationWarning, match="configs/ptq/units/kv_fp8"):
        flat = qrecipe.resolve("r.yaml")
    assert entries(flat)[0]["quantizer_name"] == "*[kv]_bmm_quantizer"


def test_renamed_recipe_names_resolve_with_a_warning(tree):
    with pytest.warns(qrecipe.RecipeDeprecationWarning, match="kv_fp8"):
        old = qrecipe.resolve("general/ptq/fp8_default-fp8_kv")
    assert old == qrecipe.resolve("general/ptq/fp8_default-kv_fp8")


def test_a_file_outside_every_search_root_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in JavaScript (js/test/api.test.js): not '<directory>:<name>'."""
    (tmp_path / "work").mkdir()
    outside = tmp_path / "outside" / "recipe.yaml"
    outside.parent.mkdir()
    outside.write_text("metadata:\n  recipe_type: ptq\nquantize:\n  quant_cfg: 7\n")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("QRECIPE_PATH", raising=False)
    for target in (str(outside), "../outside/recipe.yaml"):
        (diagnostic,) = qrecipe.validate(target)
        assert (diagnostic.code, diagnostic.file) == ("schema", str(outside.resolve()))


def test_a_file_read_as_part_of_a_directory_recipe_is_read_by_its_shape_on_its_own(tree):
    """The parsed-file cache keeps apart the kinds a file is read as (found by the fuzzer: a
    directory recipe resolved first made its recipe.yml 'a recipe.yml that cannot be
    imported' when validated on its own in the same process)."""
    tree(
        {
            "d/recipe.yml": RECIPE_HEAD + "quantize:\n  quant_cfg:\n"
            "    - quantizer_name: '*'\n      enable: false\n",
        }
    )
    assert qrecipe.resolve("d")["quantize"]["quant_cfg"][0]["enable"] is False
    assert qrecipe.validate("d/recipe.yml") == []


def _amplifier(long_imports: int, many_imports: int) -> dict[str, str]:
    """A recipe importing a 200 KB one-entry snippet, then a 25,000-entry one, several times."""
    imports = "imports:\n  long: snippets/long\n  many: snippets/many\n"
    items = ["    - $import: long\n"] * long_imports + ["    - $import: many\n"] * many_imports
    return {
        "snippets/long.yaml": "- quantizer_name: '" + "x" * 200_000 + "'\n  enable: false\n",
        "snippets/many.yaml": "- {quantizer_name: '*', enable: false}\n" * 25_000,
        "recipe.yaml": imports + RECIPE_HEAD + "quantize:\n  quant_cfg:\n" + "".join(items),
    }


@pytest.mark.parametrize(
    ("long_imports", "many_imports", "crossed"),
    [
        (0, 2, "more than 100000 values"),
        (21, 0, "more than 4194304 bytes of text"),
        # Both limits at once: the bytes of text run out 3,284 entries into the second 'many'.
        (18, 2, "more than 4194304 bytes of text"),
    ],
)
def test_an_amplifying_import_is_refused_before_it_is_copied_with_the_same_message(
    tree, monkeypatch, long_imports, many_imports, crossed
):
    tree(_amplifier(long_imports, many_imports))
    with pytest.raises(RecipeLimitError) as early:
        qrecipe.resolve("recipe.yaml")
    # Copying entry by entry, as without the early refusal, ends in the same diagnostic.
    monkeypatch.setattr("qrecipe.language.resolver._Expansion.refuse_early", lambda *args: None)
    with pytest.raises(RecipeLimitError) as copied:
        qrecipe.resolve("recipe.yaml")
    assert early.value.diagnostics == copied.value.diagnostics
    first = early.value.first
    assert crossed in first.message
    assert first.pointer == f"/quantize/quant_cfg/{long_imports + many_imports - 1}/$import"
