"""Where recipe and snippet names are looked up: the search roots.

Order: the built-in library, then extra roots (``--path DIR``, repeatable), then the roots in
``QRECIPE_PATH`` (separated by ``os.pathsep``), then the current directory. An ``imports:``
name is looked up first in the root that holds the importing file, so a library (for example
ModelOpt's ``modelopt_recipes`` tree given with ``--path``) always resolves its own snippets,
and a file in the working directory can never shadow a built-in snippet another built-in uses.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path, PurePosixPath

from .errors import PathEscapeError, RecipeNotFoundError
from .files import expand_user, file_kind, read_file, real_path
from .yamlio import parse_yaml

SUFFIXES = (".yaml", ".yml")
ENV_VAR = "QRECIPE_PATH"


@dataclass(frozen=True)
class SearchRoot:
    """A directory names are resolved in, with the label shown in messages."""

    path: Path
    label: str
    outside: bool = False

    def display(self, file: Path) -> str:
        """How a file under this root is named in messages and provenance.

        Built-ins are ``builtin:<path>``, files under the working directory are relative
        paths, files under an extra root are ``<root as given>:<path>``, and a file outside
        every root is named by its absolute path.
        """
        if self.outside:
            return str(file)
        relative = file.relative_to(self.path).as_posix()
        return f"{self.label}:{relative}" if self.label else relative

    def describe(self) -> str:
        """How hints name this root: its label, or the current directory and where it is."""
        return self.label or f"the current directory ({self.path})"

    def contains(self, file: Path) -> bool:
        try:
            file.relative_to(self.path)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Located:
    """A resolved recipe or snippet: a file or a directory recipe, and the root it lives in."""

    path: Path
    root: SearchRoot

    @cached_property
    def display(self) -> str:
        return self.root.display(self.path)

    @cached_property
    def real(self) -> Path:
        return real_path(self.path)


def builtin_root() -> Path:
    return real_path(str(resources.files("qrecipe").joinpath("recipes")))


@cache
def deprecated_names() -> dict[str, str]:
    """Old built-in names that still resolve, with a notice, to their current names."""
    file = builtin_root() / "deprecated.yaml"
    if file_kind(file) != "file":
        return {}
    docs = parse_yaml(read_file(file, "builtin:deprecated.yaml"), "builtin:deprecated.yaml")
    mapping = docs[0].data.get("deprecated", {}) if docs and isinstance(docs[0].data, dict) else {}
    return {str(k): str(v) for k, v in mapping.items()}


def _candidates(base: Path, name: str, *, allow_dir: bool) -> Iterable[Path]:
    target = base / name
    if name.endswith(SUFFIXES):
        yield target
        return
    for suffix in SUFFIXES:
        yield Path(f"{target}{suffix}")
    if allow_dir:
        yield target


def _is_recipe_dir(path: Path) -> bool:
    return file_kind(path) == "dir" and any(
        file_kind(path / f"{stem}{suffix}") == "file"
        for stem in ("recipe", "metadata")
        for suffix in SUFFIXES
    )


class Library:
    """The ordered search roots of one resolution."""

    def __init__(
        self,
        extra_roots: Sequence[str | os.PathLike[str]] = (),
        *,
        use_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        builtin: bool = True,
    ) -> None:
        roots: list[SearchRoot] = []
        if builtin:
            roots.append(SearchRoot(builtin_root(), "builtin"))
        self.extra_roots = [self._root(extra, "--path") for extra in extra_roots]
        roots += self.extra_roots
        if use_env:
            for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
                if entry:
                    roots.append(self._root(entry, ENV_VAR))
        self.cwd = real_path(cwd or os.getcwd())
        roots.append(SearchRoot(self.cwd, ""))
        self.roots = roots
        self._import_cache: dict[tuple[str, SearchRoot | None], Located] = {}

    @staticmethod
    def _root(path: str | os.PathLike[str], source: str) -> SearchRoot:
        resolved = real_path(expand_user(os.fspath(path)))
        if file_kind(resolved) != "dir":
            raise RecipeNotFoundError(
                f"search root {str(path)!r} (from {source}) is not a directory"
            )
        return SearchRoot(resolved, str(path))

    def root_of(self, file: Path) -> SearchRoot:
        """The first root holding ``file``; a file outside every root is its own directory's."""
        for root in self.roots:
            if root.contains(file):
                return root
        return SearchRoot(file.parent, str(file.parent), outside=True)

    def _find_in(self, root: SearchRoot, name: str, *, allow_dir: bool) -> Located | None:
        for candidate in _candidates(root.path, name, allow_dir=allow_dir):
            if file_kind(candidate) == "file" or (allow_dir and _is_recipe_dir(candidate)):
                real = real_path(candidate)
                if not root.contains(real):
                    raise PathEscapeError(
                        f"{name!r} resolves to {real}, outside the search root {root.path}",
                        hint="symbolic links must stay inside their search root",
                    )
                return Located(candidate, root)
        return None

    def find_import(self, name: str, importer_root: SearchRoot | None) -> Located | None:
        """Resolve an ``imports:`` value; ``None`` when no root has it.

        Lookups are remembered (a recipe library imports the same snippets over and over);
        reading a remembered file stats it again, so a deleted one is still reported.
        """
        key = (name, importer_root)
        cached = self._import_cache.get(key)
        if cached is not None:
            return cached  # reading it stats the file again, and reports it if it is gone
        found = self._find_import(name, importer_root)
        if found is not None:
            self._import_cache[key] = found
        return found

    def _find_import(self, name: str, importer_root: SearchRoot | None) -> Located | None:
        check_relative_name(name)
        order = list(self.roots)
        if importer_root is not None:
            order = [importer_root, *(r for r in order if r != importer_root)]
        for root in order:
            found = self._find_in(root, name, allow_dir=False)
            if found:
                return found
        return None

    def find_recipe(self, name_or_path: str | os.PathLike[str]) -> Located | None:
        """Resolve a recipe given by built-in name, search-root-relative name or path."""
        text = os.fspath(name_or_path)
        path = Path(expand_user(text))
        if path.is_absolute():
            for candidate in _candidates(path.parent, path.name, allow_dir=True):
                if file_kind(candidate) == "file" or _is_recipe_dir(candidate):
                    real = real_path(candidate)
                    return Located(real, self.root_of(real))
            return None
        for root in self.roots:
            if ".." in PurePosixPath(text.replace("\\", "/")).parts and root.label == "builtin":
                continue
            found = self._find_in_lenient(root, text)
            if found:
                return found
        return None

    def _find_in_lenient(self, root: SearchRoot, name: str) -> Located | None:
        for candidate in _candidates(root.path, name, allow_dir=True):
            if file_kind(candidate) == "file" or _is_recipe_dir(candidate):
                real = real_path(candidate)
                # A path given by the user may point anywhere; it just gets its own root then.
                return Located(real, root if root.contains(real) else self.root_of(real))
        return None

    def builtin_recipes(self) -> list[Located]:
        """Every recipe file of the built-in library (under ``general/``, ``huggingface/``, "
        "``models/``)."""
        root = self.roots[0] if self.roots and self.roots[0].label == "builtin" else None
        if root is None:
            return []
        found: list[Located] = []
        for top in ("general", "huggingface", "models"):
            found += self.yaml_files(SearchRoot(root.path / top, root.label), root)
        return found

    def searched(self, first: SearchRoot | None = None) -> str:
        """The roots a name was looked up in, for hints: ``first`` (if any), then the rest."""
        rest = ", ".join(root.describe() for root in self.roots)
        return f"{first.describe()} first, then: {rest}" if first is not None else rest

    def similar_name(self, name: str) -> str | None:
        """The existing recipe or snippet name closest to a missing ``name``, if one is close.

        Looked for in the whole built-in library, and in the other roots below the directory
        a relative ``name`` names: never a whole root (a working directory or ``--path /`` may
        be the whole file system), and never for an absolute name, which is a path and not a
        name in a root.
        """
        wanted = strip_suffix(name.replace("\\", "/"))
        folder = "/".join(part for part in wanted.split("/")[:-1] if part not in ("", "."))
        names: list[str] = []
        for root in self.roots:
            if root.label == "builtin":
                base = root.path
            elif folder and not wanted.startswith("/"):
                base = root.path / folder
                real = real_path(base)
                if real == real_path(root.path) or not root.contains(real):
                    continue  # climbing back to the root, or out of it
            else:
                continue
            for located in self.yaml_files(SearchRoot(base, root.label), root):
                names.append(strip_suffix(located.path.relative_to(root.path).as_posix()))
        matches = difflib.get_close_matches(wanted, list(dict.fromkeys(names)), n=1, cutoff=0.6)
        return matches[0] if matches else None

    @staticmethod
    def yaml_files(base: SearchRoot, root: SearchRoot | None = None) -> list[Located]:
        """Every YAML file below ``base``, sorted, located in ``root`` (``base`` by default)."""
        if file_kind(base.path) != "dir":
            return []
        return [
            Located(file, root or base)
            for file in sorted(base.path.rglob("*"))
            if file_kind(file) == "file" and file.suffix in SUFFIXES
        ]


def check_relative_name(name: str) -> None:
    """Refuse import names that could read outside a search root."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or Path(name).is_absolute() or ".." in posix.parts or ":" in name:
        raise PathEscapeError(
            f"import path {name!r} must be relative to a search root and stay inside it",
            hint="write library paths such as configs/numerics/fp8; add directories with --path",
        )


def strip_suffix(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
