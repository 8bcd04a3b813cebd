"""MkDocs hooks: generated reference pages and pages kept beside the code they describe.

* ``cli.md`` and ``schema-reference.md`` are generated from the argument parser and the
  published schemas on every build (see ``reference.py``), so they cannot go stale.
* ``js/README.md`` and ``tests/vectors/README.md`` live next to their code and are published
  as ``javascript.md`` and ``conformance-vectors.md``.
* A relative link to a repository file that is not a page of the site (source code, a schema
  file) is pointed at that file in the repository on GitHub instead of failing the build.
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_HERE = Path(__file__).resolve().parent
REPO = _HERE.parent.parent

# Site page -> file in the repository, for pages kept outside docs/.
EXTERNAL_PAGES = {
    "javascript.md": "js/README.md",
    "conformance-vectors.md": "tests/vectors/README.md",
}

_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def _reference_module() -> Any:
    spec = importlib.util.spec_from_file_location("qrecipe_docs_reference", _HERE / "reference.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {_HERE / 'reference.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def generated_pages() -> dict[str, str]:
    """``{site path: Markdown}`` of the pages generated at build time."""
    reference = _reference_module()
    return {
        "cli.md": reference.cli_reference(),
        "schema-reference.md": reference.schema_reference(),
    }


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for uri, markdown in generated_pages().items():
        files.append(File.generated(config, uri, content=markdown))
    for uri, source in EXTERNAL_PAGES.items():
        path = REPO / source
        if path.is_file():
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _source_of(page: Page, docs_dir: Path) -> Path:
    """Where a page's Markdown really lives in the repository."""
    uri = page.file.src_uri
    if uri in EXTERNAL_PAGES:
        return REPO / EXTERNAL_PAGES[uri]
    return docs_dir / uri


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    source_dir = _source_of(page, docs_dir).parent
    page_dir = posixpath.dirname(page.file.src_uri)
    by_source = {docs_dir / f.src_uri: f.src_uri for f in files if f.abs_src_path}
    by_source.update({REPO / src: uri for uri, src in EXTERNAL_PAGES.items()})
    blob = config["extra"]["repository_blob"]

    def rewrite(match: re.Match[str]) -> str:
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)
        path, _, fragment = target.partition("#")
        real = (source_dir / path).resolve()
        anchor = f"#{fragment}" if fragment else ""
        if real in by_source:
            relative = posixpath.relpath(by_source[real], page_dir or ".")
            return f"[{match.group('text')}]({relative}{anchor})"
        if real.exists() and REPO in real.parents:
            return f"[{match.group('text')}]({blob}/{real.relative_to(REPO).as_posix()}{anchor})"
        return match.group(0)

    return _LINK.sub(rewrite, markdown)
