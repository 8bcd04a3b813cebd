// Where recipe and snippet names are looked up: the search roots.
//
// Order: the built-in library, then extra roots (`--path DIR`), then the roots in QRECIPE_PATH,
// then the current directory. An `imports:` name is looked up first in the root that holds the
// importing file, so a library always resolves its own snippets and a file in the working
// directory can never shadow a built-in snippet another built-in uses.
//
// Files are reached through a host (see `Host` in index.d.ts): the Node entry point provides
// one over the filesystem; `memoryHost` serves files from a loader callback or a map.

import { closestMatch } from './difflib.js';
import { PathEscapeError, RecipeNotFoundError } from './errors.js';
import { pyRepr } from './show.js';

export const SUFFIXES = ['.yaml', '.yml'];

// ------------------------------------------------------------------ POSIX paths
/** Join and normalise like Python's PurePosixPath: drop empty and "." parts, keep "..". */
export function joinPath(base, name) {
  const text = name.startsWith('/') ? name : `${base}/${name}`;
  const parts = text.split('/').filter((part) => part && part !== '.');
  return `/${parts.join('/')}`;
}

export function dirname(path) {
  const index = path.lastIndexOf('/');
  return index <= 0 ? '/' : path.slice(0, index);
}

export function basename(path) {
  return path.slice(path.lastIndexOf('/') + 1);
}

function isWithin(file, root) {
  return file === root || root === '/' || file.startsWith(`${root}/`);
}

function relativeTo(file, root) {
  if (file === root) return '.';
  return root === '/' ? file.slice(1) : file.slice(root.length + 1);
}

function pathParts(name) {
  return name
    .replaceAll('\\', '/')
    .split('/')
    .filter((part) => part && part !== '.');
}

export function stripSuffix(name) {
  for (const suffix of SUFFIXES) if (name.endsWith(suffix)) return name.slice(0, -suffix.length);
  return name;
}

// ------------------------------------------------------------------ roots and files
/** A directory names are resolved in, with the label shown in messages. */
export class SearchRoot {
  /** `outside`: the directory of a file outside every root, which is named by its path. */
  constructor(path, label, outside = false) {
    this.path = path;
    this.label = label;
    this.outside = outside;
  }

  /** How a file under this root is named in messages and provenance. */
  display(file) {
    if (this.outside) return file;
    const relative = relativeTo(file, this.path);
    return this.label ? `${this.label}:${relative}` : relative;
  }

  /** How hints name this root: its label, or the current directory and where it is. */
  describe() {
    return this.label || `the current directory (${this.path})`;
  }

  contains(file) {
    return isWithin(file, this.path);
  }
}

/** A resolved recipe or snippet: a file or a directory recipe, and the root it lives in. */
export class Located {
  constructor(path, root, host) {
    this.path = path;
    this.root = root;
    this.host = host;
  }

  get display() {
    return this.root.display(this.path);
  }

  get real() {
    return this.host.realpath(this.path);
  }
}

function* candidates(base, name, allowDir) {
  const target = joinPath(base, name);
  if (SUFFIXES.some((suffix) => name.endsWith(suffix))) {
    yield target;
    return;
  }
  for (const suffix of SUFFIXES) yield target + suffix;
  if (allowDir) yield target;
}

export function isRecipeDir(host, path) {
  return (
    host.stat(path) === 'dir' &&
    ['recipe', 'metadata'].some((stem) => SUFFIXES.some((suffix) => host.stat(`${path}/${stem}${suffix}`) === 'file'))
  );
}

/** Refuse import names that could read outside a search root. */
export function checkRelativeName(name) {
  const posix = name.replaceAll('\\', '/');
  if (posix.startsWith('/') || pathParts(name).includes('..') || name.includes(':')) {
    throw new PathEscapeError(`import path ${pyRepr(name)} must be relative to a search root and stay inside it`, {
      hint: 'write library paths such as configs/numerics/fp8; add directories with --path',
    });
  }
}

/** The ordered search roots of one resolution. */
export class Library {
  /**
   * @param {import('../index.js').Host} host
   * @param {{path?: string[], useEnv?: boolean, builtin?: boolean}} [options]
   */
  constructor(host, { path = [], useEnv = true, builtin = true } = {}) {
    this.host = host;
    const roots = [];
    if (builtin && host.builtinRoot) roots.push(new SearchRoot(host.builtinRoot, 'builtin'));
    /** The roots given with --path, in order. */
    this.extraRoots = path.map((extra) => this.root(extra, '--path'));
    roots.push(...this.extraRoots);
    if (useEnv && host.searchPath) {
      for (const entry of host.searchPath.split(host.pathSeparator || ':')) {
        if (entry) roots.push(this.root(entry, 'QRECIPE_PATH'));
      }
    }
    this.cwd = host.realpath(host.cwd);
    roots.push(new SearchRoot(this.cwd, ''));
    this.roots = roots;
  }

  root(path, source) {
    const resolved = this.host.realpath(this.host.absolute(path));
    if (this.host.stat(resolved) !== 'dir') {
      throw new RecipeNotFoundError(`search root ${pyRepr(String(path))} (from ${source}) is not a directory`);
    }
    return new SearchRoot(resolved, String(path));
  }

  located(path, root) {
    return new Located(path, root, this.host);
  }

  /** The first root holding `file`; a file outside every root is its own directory's. */
  rootOf(file) {
    for (const root of this.roots) if (root.contains(file)) return root;
    return new SearchRoot(dirname(file), dirname(file), true);
  }

  findIn(root, name, allowDir) {
    for (const candidate of candidates(root.path, name, allowDir)) {
      if (this.host.stat(candidate) === 'file' || (allowDir && isRecipeDir(this.host, candidate))) {
        const real = this.host.realpath(candidate);
        if (!root.contains(real)) {
          throw new PathEscapeError(`${pyRepr(name)} resolves to ${real}, outside the search root ${root.path}`, {
            hint: 'symbolic links must stay inside their search root',
          });
        }
        return this.located(candidate, root);
      }
    }
    return null;
  }

  /** Resolve an `imports:` value; null when no root has it. */
  findImport(name, importerRoot) {
    checkRelativeName(name);
    let order = [...this.roots];
    if (importerRoot) {
      order = [
        importerRoot,
        ...order.filter(
          (r) =>
            !(r.path === importerRoot.path && r.label === importerRoot.label && r.outside === importerRoot.outside),
        ),
      ];
    }
    for (const root of order) {
      const found = this.findIn(root, name, false);
      if (found) return found;
    }
    return null;
  }

  /** Resolve a recipe given by built-in name, search-root-relative name or path. */
  findRecipe(nameOrPath) {
    const text = String(nameOrPath);
    const expanded = this.host.expandUser ? this.host.expandUser(text) : text;
    if (expanded.startsWith('/')) {
      const normalized = joinPath('/', expanded);
      for (const candidate of candidates(dirname(normalized), basename(normalized), true)) {
        if (this.host.stat(candidate) === 'file' || isRecipeDir(this.host, candidate)) {
          const real = this.host.realpath(candidate);
          return this.located(real, this.rootOf(real));
        }
      }
      return null;
    }
    for (const root of this.roots) {
      if (pathParts(text).includes('..') && root.label === 'builtin') continue;
      for (const candidate of candidates(root.path, text, true)) {
        if (this.host.stat(candidate) === 'file' || isRecipeDir(this.host, candidate)) {
          const real = this.host.realpath(candidate);
          // A path given by the user may point anywhere; it just gets its own root then.
          return this.located(real, root.contains(real) ? root : this.rootOf(real));
        }
      }
    }
    return null;
  }

  /** The roots a name was looked up in, for hints: `first` (if any), then the rest. */
  searched(first = null) {
    const rest = this.roots.map((root) => root.describe()).join(', ');
    return first ? `${first.describe()} first, then: ${rest}` : rest;
  }

  /**
   * The existing recipe or snippet name closest to a missing `name`, if one is close: looked
   * for in the whole built-in library, and in the other roots below the directory a relative
   * `name` names: never a whole root (a working directory or `--path /` may be the whole file
   * system), and never for an absolute name, which is a path and not a name in a root.
   */
  similarName(name) {
    const wanted = stripSuffix(String(name).replaceAll('\\', '/'));
    const folder = wanted
      .split('/')
      .slice(0, -1)
      .filter((part) => part && part !== '.')
      .join('/');
    const names = [];
    for (const root of this.roots) {
      let base;
      if (root.label === 'builtin') base = root.path;
      else if (folder && !wanted.startsWith('/')) {
        base = joinPath(root.path, folder);
        const real = this.host.realpath(base);
        if (real === this.host.realpath(root.path) || !root.contains(real)) continue; // climbing back to the root, or out of it
      } else continue;
      for (const located of this.yamlFiles(base, root)) {
        names.push(stripSuffix(relativeTo(located.path, root.path)));
      }
    }
    return closestMatch(wanted, [...new Set(names)]);
  }

  /** Every recipe file of the built-in library (under general/, huggingface/, models/). */
  builtinRecipes() {
    const root = this.roots[0]?.label === 'builtin' ? this.roots[0] : null;
    if (!root) return [];
    return ['general', 'huggingface', 'models'].flatMap((top) => this.yamlFiles(`${root.path}/${top}`, root));
  }

  /** Every YAML file below `directory`, located in `root`. */
  yamlFiles(directory, root) {
    if (!this.host.list) return [];
    return this.host
      .list(directory)
      .filter((file) => SUFFIXES.some((suffix) => file.endsWith(suffix)))
      .map((file) => this.located(file, root));
  }
}
