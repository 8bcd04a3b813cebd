"""The pre-commit hooks, run by real pre-commit through real ``git commit``.

A scratch project points its ``.pre-commit-config.yaml`` at a clone of this repository at its
current HEAD, exactly as users pin a release, so pre-commit builds the hook environment by
pip-installing qrecipe from that commit. Only committed files are in the clone: hooks must be
committed before these tests can see them. One hook environment (PRE_COMMIT_HOME in a
temporary directory) is shared by every scenario.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

FP8_SNIPPET = """\
num_bits: e4m3
axis:
"""

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

# Line 7 column 19 is the bad number format; line 8 column 9 the misspelt key.
BAD_RECIPE = """\
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - quantizer_name: '*weight_quantizer'
      cfg:
        num_bits: e4m3x
        axiss: 0
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


def test_good_commit_passes(sandbox):
    project = sandbox.new_project()
    _write_good_project(sandbox, project)
    result = sandbox.commit(project, "good recipes")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "validate qrecipe recipes" in output
    assert "check qrecipe flat files are up to date" in output
    assert output.count("Passed") == 2, output
    assert sandbox.commits(project) == 1


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
