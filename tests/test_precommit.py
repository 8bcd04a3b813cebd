"""The pre-commit hooks: the flat-file check as a command, then both hooks run by real
pre-commit through real ``git commit``.

For the latter, a scratch project points its ``.pre-commit-config.yaml`` at a clone of this repository at its
current HEAD, exactly as users pin a release, so pre-commit builds the hook environment by
pip-installing qrecipe from that commit. Only committed files are in the clone: hooks must be
committed before these tests can see them. One hook environment (PRE_COMMIT_HOME in a
temporary directory) is shared by every scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import qrecipe
from helpers import BAD_RECIPE, FP8_SNIPPET
from qrecipe.cli import main as qrecipe_main

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

FP8_RECIPE = """\
imports:
  fp8: numerics/fp8
metadata:
  recipe_type: ptq
  description: FP8 weights and activations.
quantize:
  algorithm: max
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
    - quantizer_name: '*input_quantizer'
      cfg:
        $import: fp8
"""

HOOK_ARGS = ["--path", "recipes"]


def _run(command, cwd, env, timeout=120):
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _checked(command, cwd, env, timeout=120):
    result = _run(command, cwd, env, timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


class Sandbox:
    """The clone of qrecipe, a shared hook environment, and a factory of scratch projects."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clone = root / "qrecipe"
        git_config = root / "gitconfig"
        git_config.write_text("[init]\n\tdefaultBranch = main\n")
        self.env = {
            **os.environ,
            "PRE_COMMIT_HOME": str(root / "pre-commit-home"),
            # Keep the developer's own git settings (hooksPath, signing) out of the scenarios.
            "GIT_CONFIG_GLOBAL": str(git_config),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "qrecipe tests",
            "GIT_AUTHOR_EMAIL": "tests@qrecipe.invalid",
            "GIT_COMMITTER_NAME": "qrecipe tests",
            "GIT_COMMITTER_EMAIL": "tests@qrecipe.invalid",
            "NO_COLOR": "1",
        }
        self.env.pop("PYTHONPATH", None)
        _checked(["git", "clone", "--quiet", str(PROJECT_ROOT), str(self.clone)], root, self.env)
        self.rev = _checked(["git", "rev-parse", "HEAD"], self.clone, self.env).stdout.strip()
        self.projects = 0

    def new_project(self) -> Path:
        self.projects += 1
        project = self.root / f"project{self.projects}"
        (project / "recipes" / "numerics").mkdir(parents=True)
        config = textwrap.dedent(
            f"""\
            repos:
              - repo: {self.clone}
                rev: {self.rev}
                hooks:
                  - id: qrecipe-validate
                    args: {HOOK_ARGS}
                  - id: qrecipe-check-flat
                    args: {HOOK_ARGS}
                  - id: qrecipe-lint
                    args: {HOOK_ARGS}
            """
        )
        (project / ".pre-commit-config.yaml").write_text(config)
        _checked(["git", "init", "--quiet"], project, self.env)
        _checked([*PRE_COMMIT, "install"], project, self.env)
        return project

    def qrecipe(self, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """The qrecipe CLI of the pinned commit (what the hooks run), not of the work tree."""
        env = {**self.env, "PYTHONPATH": str(self.clone / "src")}
        return _checked([sys.executable, "-m", "qrecipe", *args], project, env)

    def commit(self, project: Path, message: str) -> subprocess.CompletedProcess[str]:
        _checked(["git", "add", "--all"], project, self.env)
        return _run(["git", "commit", "--quiet", "-m", message], project, self.env)

    def commits(self, project: Path) -> int:
        result = _run(["git", "rev-list", "--count", "HEAD"], project, self.env)
        return int(result.stdout) if result.returncode == 0 else 0


# -- the flat-file check as a command (fast, in process) -----------------------------------


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A git repository holding recipes/numerics/fp8.yaml and recipes/fp8.yaml; cwd is its root."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "--quiet"], check=True)
    (tmp_path / "recipes" / "numerics").mkdir(parents=True)
    (tmp_path / "recipes" / "numerics" / "fp8.yaml").write_text(FP8_SNIPPET)
    (tmp_path / "recipes" / "fp8.yaml").write_text(FP8_RECIPE)
    return tmp_path


def _lock(source: str, flat_file: str, *, canonical: bool = False, provenance: bool = False):
    flat = qrecipe.resolve(source, path=["recipes"], provenance=provenance)
    data = qrecipe.canonical_bytes(flat) if canonical else qrecipe.pretty_json(flat).encode()
    Path(flat_file).write_bytes(data)


def _check(capsys, *args: str) -> tuple[int, str]:
    status = qrecipe_main(["check-flat", *args, "--path", "recipes"])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_up_to_date_flat_files_pass_whatever_their_formatting(workspace, capsys):
    _lock("recipes/fp8.yaml", "recipes/fp8.flat.json")
    (workspace / "recipes" / "canonical.yaml").write_text(FP8_RECIPE)
    _lock("recipes/canonical.yaml", "recipes/canonical.flat.json", canonical=True)
    assert _check(capsys, "recipes/fp8.flat.json", "recipes/canonical.flat.json") == (0, "")


def test_without_arguments_every_tracked_flat_file_is_checked(workspace, capsys):
    _lock("recipes/fp8.yaml", "recipes/fp8.flat.json")
    Path("recipes/untracked.flat.json").write_text("{}")
    assert _check(capsys) == (0, "")
    subprocess.run(["git", "add", "recipes/fp8.flat.json"], check=True)
    (workspace / "recipes" / "numerics" / "fp8.yaml").write_text("num_bits: 8\naxis:\n")
    status, output = _check(capsys)
    assert status == 1
    assert "recipes/fp8.flat.json: out of date" in output
    assert "untracked" not in output


def test_outside_a_repository_files_must_be_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "recipes").mkdir()
    status, output = _check(capsys)
    assert status == 2
    assert "name the *.flat.json files to check" in output


def test_a_directory_recipe_is_found_next_to_its_flat_file(workspace, capsys):
    recipe = workspace / "recipes" / "dir_recipe"
    recipe.mkdir()
    (recipe / "recipe.yml").write_text("metadata:\n  recipe_type: ptq\n")
    (recipe / "quantize.yml").write_text(
        "algorithm: max\nquant_cfg:\n  - quantizer_name: '*'\n    enable: false\n"
    )
    _lock("recipes/dir_recipe", "recipes/dir_recipe.flat.json")
    assert _check(capsys, "recipes/dir_recipe.flat.json") == (0, "")


def test_provenance_names_the_source_and_is_not_compared(workspace, capsys):
    (workspace / "locks").mkdir()
    _lock("recipes/fp8.yaml", "locks/fp8.flat.json", provenance=True)
    recipe = workspace / "recipes" / "fp8.yaml"
    recipe.write_text("# entries moved down one line\n" + FP8_RECIPE)
    assert _check(capsys, "locks/fp8.flat.json") == (0, "")

    recipe.write_text(FP8_RECIPE.replace("FP8 weights", "FP8 Weights"))
    status, output = _check(capsys, "locks/fp8.flat.json")
    assert status == 1
    assert "fingerprint: unchanged (sha256:" in output
    assert 'changed /metadata/description: "FP8 weights and activations." -> "FP8 Weights' in output
    command = "qrecipe resolve recipes/fp8.yaml -o locks/fp8.flat.json --path recipes --provenance"
    assert f"regenerate it with: {command}" in output


def test_a_hand_edited_flat_file_fails_on_its_fingerprint(workspace, capsys):
    _lock("recipes/fp8.yaml", "recipes/fp8.flat.json")
    flat = Path("recipes/fp8.flat.json")
    flat.write_text(flat.read_text().replace('"calibrator": "max"', '"calibrator": "histogram"', 1))
    status, output = _check(capsys, "recipes/fp8.flat.json")
    assert status == 1
    assert "recipes/fp8.flat.json: is not a valid flat recipe:" in output
    assert "does not match the content" in output
    assert "regenerate it with: qrecipe resolve recipes/fp8.yaml -o recipes/fp8.flat.json" in output


def test_a_source_that_does_not_resolve_is_reported_with_positions(workspace, capsys):
    _lock("recipes/fp8.yaml", "recipes/fp8.flat.json")
    Path("recipes/fp8.yaml").write_text(BAD_RECIPE)
    status, output = _check(capsys, "recipes/fp8.flat.json")
    assert status == 1
    assert "recipes/fp8.flat.json: its source recipes/fp8.yaml does not resolve:" in output
    assert "recipes/fp8.yaml:7:19:" in output
    assert "recipes/fp8.yaml:8:9:" in output


def test_check_flat_reports_in_json_and_as_github_annotations(workspace, capsys):
    _lock("recipes/fp8.yaml", "recipes/fp8.flat.json")
    Path("recipes/fp8.yaml").write_text(FP8_RECIPE.replace("algorithm: max", "algorithm: mse"))
    flat_file = "recipes/fp8.flat.json"
    status = qrecipe_main(["check-flat", "--format", "json", flat_file, "--path", "recipes"])
    document = json.loads(capsys.readouterr().out)
    assert status == 1
    assert document["valid"] is False
    (result,) = document["results"]
    assert result["file"] == "recipes/fp8.flat.json"
    assert result["errors"][0]["code"] == "flat-stale"
    assert any(line.startswith("regenerate it with: qrecipe resolve") for line in result["details"])
    status = qrecipe_main(["check-flat", "--format", "github", flat_file, "--path", "recipes"])
    annotation = capsys.readouterr().out
    assert status == 1
    assert annotation.startswith(
        "::error file=recipes/fp8.flat.json::out of date with its source recipes/fp8.yaml%0A"
    )


# -- real pre-commit, real git commit (slow: builds a hook environment once) ----------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("needs a git checkout of qrecipe")
    if shutil.which("git") is None:
        pytest.skip("needs git")
    if _run([*PRE_COMMIT, "--version"], PROJECT_ROOT, None).returncode != 0:
        pytest.skip("needs pre-commit")
    box = Sandbox(tmp_path_factory.mktemp("precommit"))
    # Build the hook environment once, with a generous timeout: it pip-installs qrecipe.
    _checked([*PRE_COMMIT, "install-hooks"], box.new_project(), box.env, timeout=600)
    return box


def _write_good_project(sandbox: Sandbox, project: Path) -> None:
    (project / "recipes" / "numerics" / "fp8.yaml").write_text(FP8_SNIPPET)
    (project / "recipes" / "fp8.yaml").write_text(FP8_RECIPE)
    sandbox.qrecipe(
        project, "resolve", "recipes/fp8.yaml", "-o", "recipes/fp8.flat.json", *HOOK_ARGS
    )


@pytest.mark.slow
def test_good_commit_passes(sandbox):
    project = sandbox.new_project()
    _write_good_project(sandbox, project)
    result = sandbox.commit(project, "good recipes")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "validate qrecipe recipes" in output
    assert "check qrecipe flat files are up to date" in output
    assert "lint qrecipe recipes" in output
    assert output.count("Passed") == 3, output
    assert sandbox.commits(project) == 1


@pytest.mark.slow
def test_bad_recipe_commit_fails_with_positions(sandbox):
    project = sandbox.new_project()
    (project / "recipes" / "bad.yaml").write_text(BAD_RECIPE)
    result = sandbox.commit(project, "bad recipe")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "validate qrecipe recipes" in output
    assert "Failed" in output
    assert 'recipes/bad.yaml:7:19: "e4m3x" is not a number format' in output
    assert 'recipes/bad.yaml:8:9: unknown key "axiss"' in output
    assert 'did you mean "axis"?' in output
    assert sandbox.commits(project) == 0


@pytest.mark.slow
def test_stale_flat_file_fails_with_regenerate_command(sandbox):
    project = sandbox.new_project()
    _write_good_project(sandbox, project)
    assert sandbox.commit(project, "good recipes").returncode == 0

    # Only the snippet changes: the flat file of the recipe importing it is now stale.
    (project / "recipes" / "numerics" / "fp8.yaml").write_text("num_bits: 8\naxis:\n")
    result = sandbox.commit(project, "int8 instead")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "recipes/fp8.flat.json: out of date with its source recipes/fp8.yaml" in output
    assert "fingerprint: committed sha256:" in output
    assert "changed /quantize/quant_cfg/1/cfg/num_bits: [4,3] -> 8" in output
    command = "qrecipe resolve recipes/fp8.yaml -o recipes/fp8.flat.json --path recipes"
    assert f"regenerate it with: {command}" in output
    assert sandbox.commits(project) == 1

    # Following the hint makes the commit pass.
    sandbox.qrecipe(project, *command.split()[1:])
    result = sandbox.commit(project, "int8 instead, flat file regenerated")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sandbox.commits(project) == 2


@pytest.mark.slow
def test_flat_file_without_source_fails(sandbox):
    project = sandbox.new_project()
    _write_good_project(sandbox, project)
    (project / "recipes" / "fp8.flat.json").rename(project / "recipes" / "orphan.flat.json")
    result = sandbox.commit(project, "orphan flat file")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "recipes/orphan.flat.json: no source recipe found for it" in output
    assert "looked for orphan.yaml, orphan.yml or a directory recipe orphan/" in output
    assert sandbox.commits(project) == 0
