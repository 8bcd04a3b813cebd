"""The documentation: its examples are valid, the site builds, the generated pages are complete.

Conventions for examples in the Markdown pages (``docs/*.md`` and the READMEs the site
publishes):

* Every fenced ``yaml`` example written in the recipe language must validate against the
  recipe schema (both documents of a two-document list snippet), and every ``json`` example
  of a flat recipe against the flat schema. YAML and JSON of other tools (a
  ``.pre-commit-config.yaml``, editor settings) are recognised by their keys and only parsed.
* ``<!-- invalid -->`` on the line before a fence: the example is broken on purpose and must
  fail validation (or resolution), so the marker cannot hide a typo.
* ``<!-- fragment -->``: a piece of a file, not a whole one; it must still parse as YAML.
* A first line ``# some/path.yaml`` names the file: examples of one page are written to a
  temporary directory under those names, so recipes can import snippets shown beside them.
* A complete recipe whose imports are all built-ins or examples of the same page must resolve.
* A ``text`` block whose first line is ``$ qrecipe validate ...`` (or ``lint``, ``explain``,
  ``diff``) must show exactly what that command prints when run in that temporary directory,
  where the model directories ``--model`` names are made from ``tests/data/configs``
  (``llama-3-8b/config.json`` and so on). That directory is shown as ``/home/me/recipes``,
  where messages name the working directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import qrecipe
from qrecipe import cli
from qrecipe.language.errors import RecipeError
from qrecipe.language.library import Library
from qrecipe.language.schemacheck import schema_diagnostics
from qrecipe.language.yamlio import parse_yaml
from qrecipe.schema import load_schema

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PUBLISHED_READMES = (REPO / "js" / "README.md", REPO / "tests" / "vectors" / "README.md")
BUILTIN_NAMESPACES = ("configs/", "general/", "huggingface/", "models/")
# Keys that also occur in other tools' files; alone they do not make a document a recipe.
GENERIC_KEYS = {"description", "type", "enable", "$schema", "name", "version"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(invalid|fragment)\b.*-->\s*$")
_PATH_COMMENT = re.compile(r"^#\s*(?P<path>[\w][\w./-]*\.ya?ml)\s*$")


@dataclass
class Example:
    page: Path
    line: int
    lang: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def path(self) -> str | None:
        first = self.text.lstrip().split("\n", 1)[0]
        match = _PATH_COMMENT.match(first)
        return match.group("path") if match else None


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [p for p in PUBLISHED_READMES if p.is_file()]


def fenced_blocks(page: Path) -> list[Example]:
    """Every fenced block of a page, with its language and the marker before it."""
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks: list[Example] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence = match.group("indent"), match.group("fence")
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = _MARKER.match(previous)
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        start = index - len(body)
        blocks.append(
            Example(
                page,
                start,
                match.group("lang").lower(),
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
            )
        )
        index += 1
    return blocks


@cache
def recipe_vocabulary() -> frozenset[str]:
    """Every property name of the recipe schema, less words other tools use too."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema("recipe"))
    return frozenset(names - GENERIC_KEYS)


def is_recipe_language(data: Any) -> bool:
    if isinstance(data, list):
        return True
    return isinstance(data, dict) and bool(set(data) & recipe_vocabulary())


def is_flat(data: Any) -> bool:
    return isinstance(data, dict) and (
        "quantize" in data
        or "fingerprint" in data
        or str(data.get("$schema", "")) == load_schema("flat")["$id"]
    )


def schema_problems(example: Example) -> list[str]:
    """Parse and schema-check one example; the problems as text (empty when it is valid)."""
    name = example.path or example.where
    if example.lang == "json":
        try:
            data = json.loads(example.text)
        except json.JSONDecodeError as exc:
            return [f"invalid JSON: {exc}"]
        if not is_flat(data):
            return []
        found = [d.format() for d in schema_diagnostics(data, None, name, schema="flat")]
        if not found and qrecipe.fingerprint(data) != data["fingerprint"]:
            found.append(f"fingerprint is not {qrecipe.fingerprint(data)}")
        return found
    try:
        documents = parse_yaml(example.text, name)
    except RecipeError as exc:
        return [d.format() for d in exc.diagnostics]
    if len(documents) == 2:
        header, body = documents
        found = schema_diagnostics(
            header.data or {}, header, name, definition="list_snippet_header"
        )
        found += schema_diagnostics(body.data, body, name, definition="entry_list")
    elif len(documents) == 1 and is_recipe_language(documents[0].data):
        # The recipe.yml of a directory recipe holds metadata only; its name says so.
        part = "directory_recipe_file" if Path(name).stem == "recipe" else None
        found = schema_diagnostics(documents[0].data, documents[0], name, definition=part)
    else:
        found = []
    return [d.format() for d in found]


def is_complete_recipe(example: Example) -> bool:
    if example.lang not in ("yaml", "yml"):
        return False
    documents = parse_yaml(example.text, example.where)
    data = documents[0].data if len(documents) == 1 else None
    return isinstance(data, dict) and "metadata" in data and "quantize" in data


def resolvable_imports(example: Example, named: set[str]) -> bool:
    """True when every import is a built-in or another example of the page.

    A name in a built-in namespace must exist, so a misspelt library path fails the test.
    """
    data = parse_yaml(example.text, example.where)[0].data
    library = Library(use_env=False)
    for target in (data.get("imports") or {}).values():
        shown = any(
            n == target
            or n.endswith((f"/{target}.yaml", f"/{target}.yml"))
            or n in (f"{target}.yaml", f"{target}.yml")
            for n in named
        )
        if shown:
            continue
        if target.startswith(BUILTIN_NAMESPACES):
            assert library.find_import(target, None) is not None, (
                f"{example.where}: imports {target!r}, which is not a built-in snippet"
            )
            continue
        return False
    return True


def page_examples() -> list[tuple[Path, list[Example]]]:
    found = []
    for page in doc_pages():
        blocks = [b for b in fenced_blocks(page) if b.lang in ("yaml", "yml", "json", "text")]
        if blocks:
            found.append((page, blocks))
    return found


PAGES = page_examples()


def write_examples(examples: list[Example], root: Path) -> list[str]:
    """Write the examples that name their file under ``root``; their roots for ``--path``."""
    roots = {root}
    for example in examples:
        if example.path and example.lang in ("yaml", "yml"):
            target = root / example.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(example.text, encoding="utf-8")
            roots.update(p for p in target.parents if root in p.parents)
    return [str(p) for p in sorted(roots)]


def run_cli(argv: list[str]) -> tuple[int, str]:
    """Run the command line in-process; what it prints, stdout and stderr interleaved."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = cli.main(argv)
    return status, printed.getvalue()


@pytest.mark.parametrize(
    ("page", "examples"), PAGES, ids=[p.relative_to(REPO).as_posix() for p, _ in PAGES]
)
def test_examples_are_valid(page, examples, tmp_path, monkeypatch):
    """Unmarked examples validate; invalid ones fail; fragments parse; recipes resolve."""
    monkeypatch.delenv("QRECIPE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    roots = write_examples(examples, tmp_path)
    named = {e.path for e in examples if e.path}
    failures: list[str] = []
    for index, example in enumerate(examples):
        if example.lang == "text":
            continue
        if example.marker == "fragment":
            if example.lang != "json":
                try:
                    parse_yaml(example.text, example.where)
                except RecipeError as exc:
                    failures.append(f"{example.where}: fragment does not parse: {exc}")
            continue
        problems = schema_problems(example)
        if example.marker == "invalid":
            if not problems and not resolution_problems(example, index, tmp_path, roots):
                failures.append(f"{example.where}: marked invalid but it is valid")
            continue
        if problems:
            failures.append(f"{example.where}: " + "\n".join(problems))
            continue
        if is_complete_recipe(example) and resolvable_imports(example, named):
            trouble = resolution_problems(example, index, tmp_path, roots)
            if trouble:
                failures.append(f"{example.where}: does not resolve: " + "\n".join(trouble))
    assert not failures, "\n\n".join(failures)


def resolution_problems(example: Example, index: int, root: Path, roots: list[str]) -> list[str]:
    """What ``qrecipe validate`` says about an example (resolving it when it is a recipe)."""
    if example.lang == "json":
        return []
    file = root / (example.path or f"_example_{index}.yaml")
    if not example.path:
        file.write_text(example.text, encoding="utf-8")
    return [d.format() for d in qrecipe.validate(file, path=roots)]


TRANSCRIBED = tuple(f"$ qrecipe {name} " for name in ("validate", "lint", "explain", "diff"))
SHOWN_WORKING_DIRECTORY = "/home/me/recipes"
CONFIGS = REPO / "tests" / "data" / "configs"


def write_models(root: Path) -> None:
    """A model directory per test configuration, as ``--model`` in the pages names them."""
    for config in CONFIGS.glob("*.json"):
        (root / config.stem).mkdir()
        (root / config.stem / "config.json").write_bytes(config.read_bytes())


@pytest.mark.parametrize(
    ("page", "examples"), PAGES, ids=[p.relative_to(REPO).as_posix() for p, _ in PAGES]
)
def test_shown_output_is_real(page, examples, tmp_path, monkeypatch):
    """A ``$ qrecipe validate`` (``lint``, ``explain``, ``diff``) transcript shows exactly what
    the command prints."""
    monkeypatch.delenv("QRECIPE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    write_examples(examples, tmp_path)
    write_models(tmp_path)
    checked = 0
    for example in examples:
        if example.lang != "text" or not example.text.startswith(TRANSCRIBED):
            continue
        commands = re.split(r"^\$ ", example.text, flags=re.MULTILINE)[1:]
        for command in commands:
            line, _, shown = command.partition("\n")
            if "--model" in line and importlib.util.find_spec("transformers") is None:
                continue  # building a model needs the [review] extra
            status, printed = run_cli(shlex.split(line)[1:])
            printed = printed.replace(str(tmp_path.resolve()), SHOWN_WORKING_DIRECTORY)
            assert printed.rstrip("\n") == shown.rstrip("\n"), (
                f"{example.where}: `{line}` prints\n{printed}"
            )
            assert status in (0, 1)
            checked += 1
    if page.name == "authoring.md":
        assert checked >= 3
    if page.name == "review.md":
        assert checked >= 5


def test_review_page_lists_every_lint_rule():
    from qrecipe.review import RULES

    page = (DOCS / "review.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"| `{rule.id}` | {rule.level} |" in page, rule.id
        assert rule.summary.replace("|", "\\|") in page, rule.id


def test_every_marker_is_on_a_checked_fence():
    """A marker must sit right before a yaml or json fence, or it checks nothing."""
    for page in doc_pages():
        lines = page.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, 1):
            if not _MARKER.match(line):
                continue
            following = next((n for n in lines[number:] if n.strip()), "")
            fence = _FENCE.match(following)
            assert fence, f"{page.name}:{number}: marker not followed by a fence"
            assert fence.group("lang") in ("yaml", "yml", "json"), f"{page.name}:{number}"


def test_authoring_examples_cover_the_language():
    """The authoring guide shows every form of $import, each checked by the tests above."""
    examples = dict(PAGES).get(DOCS / "authoring.md", [])
    text = "\n".join(e.text for e in examples)
    for form in (
        "$import: [",  # merge of several dict snippets
        "- $import:",  # list splice / dict snippet as one entry
        "quantize:\n  $import:",  # a whole quantize section
        "---",  # a two-document list snippet
        "parent_class:",
        "block_sizes:",
    ):
        assert form in text, form
    assert sum(e.marker == "invalid" for e in examples) >= 4
    assert sum(is_complete_recipe(e) for e in examples if e.marker is None) >= 5


# --------------------------------------------------------------------------- generated pages


def _docs_generators() -> Any:
    path = DOCS / "gen" / "reference.py"
    spec = importlib.util.spec_from_file_location("qrecipe_docs_reference_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_page_mentions_every_subcommand_and_option():
    page = _docs_generators().cli_reference()
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert len(subparsers.choices) >= 5
    sections = dict(re.findall(r"^## `(qrecipe[^`]*)`(.*?)(?=^## |\Z)", page, re.M | re.S))
    for name, sub in [("", parser), *subparsers.choices.items()]:
        section = sections[f"qrecipe {name}".strip()]
        for action in sub._actions:
            for option in action.option_strings:
                assert option in section, (name, option)
            if action.option_strings or action is subparsers:
                continue
            assert f"`{action.metavar or action.dest}`" in section, (name, action.dest)
            if action.help:
                assert action.help in section, (name, action.help)
    for name in subparsers.choices:
        assert f"`{name}`" in sections["qrecipe"] or name in sections["qrecipe"]


def test_schema_page_covers_every_definition_and_property():
    page = _docs_generators().schema_reference()
    for name in ("recipe", "flat"):
        schema = load_schema(name)
        assert schema["$id"] in page
        for definition, node in schema["$defs"].items():
            assert f"### `{definition}`" in page, definition
            for prop in node.get("properties", {}):
                assert f"`{prop}`" in page, (definition, prop)
    attributes = load_schema("flat")["$defs"]["attributes"]["properties"]
    for prop, node in attributes.items():
        assert f"`{prop}`" in page
        assert json.dumps(node["default"]) in page, prop


# --------------------------------------------------------------------------- the site


@pytest.mark.slow
def test_site_builds_strict_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "WARNING" not in log, log
    for page in ("cli", "schema-reference", "authoring", "quickstart"):
        assert (tmp_path / page / "index.html").is_file(), page
