"""MkDocs hook: the recipe playground page (``playground.md``) and its bundle.

On every build ``playground/build.mjs`` bundles the page's script and styles with esbuild
(installing the pinned npm packages of ``playground/`` first when they are missing or out of
date), and the two files are published under ``assets/playground/``. The page then loads them
with relative URLs, so the built site works offline, from ``file://`` and from any static host.
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPO = Path(__file__).resolve().parent.parent.parent
PLAYGROUND = REPO / "playground"
PAGE = "playground.md"
ASSET_DIR = "assets/playground"
BUNDLE = ("playground.js", "playground.css")


def _run(command: list[str], cwd: Path) -> str:
    executable = shutil.which(command[0])
    if executable is None:
        raise PluginError(
            f"the playground page is bundled with Node.js: '{command[0]}' was not found on PATH "
            "(install Node.js 18 or later with npm)"
        )
    result = subprocess.run(
        [executable, *command[1:]], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PluginError(
            f"'{' '.join(command)}' in {cwd} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def _install_packages() -> None:
    """``npm ci`` in playground/ unless node_modules matches package-lock.json already."""
    installed = PLAYGROUND / "node_modules" / ".package-lock.json"
    lock = PLAYGROUND / "package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    _run(["npm", "ci", "--no-audit", "--no-fund"], PLAYGROUND)


def build_bundle(outdir: Path) -> dict[str, bytes]:
    """Bundle the playground into ``outdir``; returns ``{file name: content}``."""
    _install_packages()
    _run(["node", "build.mjs", "--outdir", str(outdir)], PLAYGROUND)
    return {name: (outdir / name).read_bytes() for name in BUNDLE}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    with tempfile.TemporaryDirectory(prefix="qrecipe-playground-") as outdir:
        bundle = build_bundle(Path(outdir))
    for name, content in bundle.items():
        files.append(File.generated(config, f"{ASSET_DIR}/{name}", content=content))
    return files


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    if page.file.src_uri != PAGE:
        return output
    base = posixpath.relpath(ASSET_DIR, posixpath.dirname(page.file.dest_uri) or ".")
    style = f'<link rel="stylesheet" href="{base}/playground.css">'
    script = f'<script src="{base}/playground.js"></script>'
    return output.replace("</head>", f"{style}\n</head>", 1).replace(
        "</body>", f"{script}\n</body>", 1
    )
