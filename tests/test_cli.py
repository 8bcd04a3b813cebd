"""The qrecipe command line: exit codes, formats, outputs, and that it stays light."""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import qrecipe
from helpers import RECIPE_HEAD, write_tree
from qrecipe.cli import build_parser, main

GOOD = RECIPE_HEAD + "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n"
BAD = RECIPE_HEAD + "quantize:\n  quant_cfg:\n    - {quantizer_name: '*', enabel: false}\n"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QRECIPE_PATH", raising=False)
    write_tree(tmp_path, {"good.yaml": GOOD, "bad.yaml": BAD})
    return tmp_path


def test_validate_exit_codes_and_text_messages(files, capsys):
    assert main(["validate", "good.yaml"]) == 0
    assert "good.yaml: ok" in capsys.readouterr().out
    assert main(["validate", "good.yaml", "bad.yaml"]) == 1
    err = capsys.readouterr().err
    assert 'bad.yaml:6:29: unknown key "enabel" (at /quantize/quant_cfg/0/enabel)' in err
    assert 'hint: did you mean "enable"?' in err
    assert "1 problem(s) in 1 of 2 file(s)" in err


def test_validate_json_and_github_formats(files, capsys):
    assert main(["validate", "--format", "json", "bad.yaml"]) == 1
    report = json.loads(capsys.readouterr().out)
    (error,) = report["results"][0]["errors"]
    assert (error["code"], error["line"], error["column"], error["pointer"]) == (
        "schema",
        6,
        29,
        "/quantize/quant_cfg/0/enabel",
    )
    assert main(["validate", "--format", "github", "bad.yaml"]) == 1
    assert capsys.readouterr().out.startswith("::error file=bad.yaml,line=6,col=29::unknown key")


def test_usage_errors_exit_2(files, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
    assert main(["validate", "--path", "no/such/dir", "good.yaml"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_resolve_writes_pretty_or_canonical_json(files, capsys):
    assert main(["resolve", "good.yaml"]) == 0
    pretty = capsys.readouterr().out
    assert pretty.startswith('{\n  "$schema": ')
    assert main(["resolve", "good.yaml", "--canonical", "-o", "out.json"]) == 0
    canonical = (files / "out.json").read_bytes()
    assert b"\n" not in canonical
    assert json.loads(canonical) == json.loads(pretty)
    assert main(["fingerprint", "out.json"]) == 0
    assert capsys.readouterr().out.strip() == json.loads(pretty)["fingerprint"]
    assert main(["fingerprint", "good.yaml"]) == 0
    assert capsys.readouterr().out.strip() == json.loads(pretty)["fingerprint"]


def test_resolve_of_an_invalid_or_missing_recipe_exits_1(files, capsys):
    assert main(["resolve", "bad.yaml"]) == 1
    assert "bad.yaml:6:29" in capsys.readouterr().err
    assert main(["resolve", "missing/recipe"]) == 1
    assert "was not found" in capsys.readouterr().err


def test_unwritable_output_is_a_usage_error(files, capsys):
    assert main(["resolve", "good.yaml", "-o", str(files / "no" / "dir" / "x.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in (
        "validate",
        "resolve",
        "list",
        "schema",
        "fingerprint",
        "QRECIPE_PATH",
        "exit status",
    ):
        assert command in text


def test_cli_does_not_import_torch_or_numpy():
    code = (
        "import sys; from qrecipe.cli import main; import qrecipe; "
        "print(sorted(m for m in ('torch', 'triton', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_console_script_runs(files):
    result = subprocess.run(
        [sys.executable, "-m", "qrecipe", "validate", "bad.yaml"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "unknown key" in result.stderr


def test_list_shows_recipes_under_each_path_root_after_the_builtins(files, capsys):
    (files / "mine").mkdir()
    (files / "mine" / "fp8.yaml").write_text(GOOD.replace("description: ", "description: Mine. "))
    (files / "mine" / "snippet.yaml").write_text("num_bits: e4m3\n")
    assert main(["list", "--path", "mine"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("general/ptq/")
    header = lines.index("mine:")
    assert lines[header - 1] == ""
    assert [line.split()[0] for line in lines[header + 1 :]] == ["fp8"]
    assert main(["list", "--format", "json", "--path", "mine"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing[-1]["name"] == "fp8"
    assert listing[-1]["root"] == "mine"
    assert {entry["root"] for entry in listing[:-1]} == {"builtin"}


def test_schema_takes_no_search_path_and_prints_the_catalog(capsys):
    assert main(["schema", "catalog"]) == 0
    assert json.loads(capsys.readouterr().out)["schemas"]
    with pytest.raises(SystemExit) as caught:
        main(["schema", "--path", ".", "flat"])
    assert caught.value.code == 2


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_every_hook_is_a_subcommand():
    hooks = Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml"
    entries = [hook["entry"] for hook in yaml.safe_load(hooks.read_text())]
    assert entries
    for entry in entries:
        assert entry.split()[0] == "qrecipe", entry
        assert entry.split()[1] in build_parser()._subparsers._group_actions[0].choices


def test_one_version_everywhere(capsys):
    repo = Path(__file__).resolve().parent.parent
    package = json.loads((repo / "js" / "package.json").read_text())
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"qrecipe {qrecipe.__version__}"
    assert package["version"] == qrecipe.__version__
    assert importlib.metadata.version("qrecipe") == qrecipe.__version__


def test_version_is_answered_without_importing_the_subcommands():
    program = (
        "import sys\n"
        "from qrecipe.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code)\n"
        "    print(sorted(m for m in sys.modules if m.startswith(('qrecipe.cli.', 'qrecipe.review'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.stdout.splitlines() == [f"qrecipe {qrecipe.__version__}", "0", "[]"]


def test_the_package_schema_function_is_not_hidden_by_the_schema_subpackage():
    # qrecipe.schema is the language's schema() even after the subpackage of the same name
    # (the published files) has been imported directly.
    program = (
        "import qrecipe.schema, qrecipe\n"
        "print(callable(qrecipe.schema), qrecipe.schema('flat')['$id'])\n"
    )
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "True"


def test_validate_reads_standard_input_as_dash(files):
    bad = subprocess.run(
        [sys.executable, "-m", "qrecipe", "validate", "-"],
        input=BAD,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith('<stdin>:6:29: unknown key "enabel"')
    assert "qrecipe-stdin-" not in bad.stderr
    good = subprocess.run(
        [sys.executable, "-m", "qrecipe", "validate", "-"],
        input=GOOD,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (good.returncode, good.stdout) == (0, "<stdin>: ok\n")


def test_validate_a_directory_checks_everything_below_it(files, capsys):
    write_tree(
        files,
        {
            "lib/b.yaml": GOOD,
            "lib/a/bad.yaml": BAD,
            "lib/dirrec/recipe.yml": "metadata:\n  recipe_type: ptq\n",
            "lib/dirrec/quantize.yml": "quant_cfg:\n  - {quantizer_name: '*', enable: false}\n",
            "lib/notes.txt": "not a recipe\n",
        },
    )
    assert main(["validate", "lib"]) == 1
    captured = capsys.readouterr()
    # The directory recipe is one target, not its two files.
    assert captured.out == "lib/b.yaml: ok\nlib/dirrec: ok\n"
    assert captured.err.startswith("lib/a/bad.yaml:6:29: unknown key")
    assert captured.err.endswith("1 problem(s) in 1 of 3 file(s)\n")


def test_list_wraps_descriptions_within_100_columns(files, capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    infos = qrecipe.list_recipes()
    width = max(len(info.name) for info in infos)
    # Every description is all there, its continuation lines under its first.
    text = " ".join(line[width + 2 :] for line in lines)
    for info in infos:
        assert info.description in " ".join(text.split()), info.name


def test_validate_a_directory_skips_folders_that_vanish_while_listed(files, capsys, monkeypatch):
    # As under /proc: a process's folder is listed, then gone before it is read.
    write_tree(files, {"lib/b.yaml": GOOD, "lib/gone/c.yaml": GOOD})
    scandir = os.scandir

    def vanishing(path: Any) -> Any:
        if os.path.basename(os.fspath(path)) == "gone":
            raise FileNotFoundError(2, "No such file or directory", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert main(["validate", "lib"]) == 0
    assert capsys.readouterr().out == "lib/b.yaml: ok\n"


def test_the_javascript_table_of_unprintable_characters_is_current():
    # JavaScript quotes values in messages from this table of Python's str.isprintable.
    repo = Path(__file__).resolve().parent.parent
    script = repo / "js" / "scripts" / "unprintable.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
