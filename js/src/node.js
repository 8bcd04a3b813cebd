// The Node.js entry point: the core plus a filesystem host, the packaged built-in library,
// QRECIPE_PATH and node:crypto.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import * as core from './core/index.js';
import { statKind } from './statkind.js';

export * from './core/index.js';

const PACKAGE_ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..');

/** The directory of the packaged built-in recipe library. */
export const BUILTIN_ROOT = nodePath.join(PACKAGE_ROOT, 'recipes');

/** Hex SHA-256 with node:crypto. */
export function nodeSha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function expandUser(path) {
  if (path === '~') return os.homedir();
  if (path.startsWith('~/')) return nodePath.join(os.homedir(), path.slice(2));
  return path;
}

/** Resolve symbolic links as far as the path exists (like Python's Path.resolve()). */
function realpath(path) {
  try {
    return fs.realpathSync(path);
  } catch {
    const parent = nodePath.dirname(path);
    if (parent === path) return path;
    return nodePath.join(realpath(parent), nodePath.basename(path));
  }
}

function listFiles(directory) {
  const found = [];
  let entries;
  try {
    entries = fs.readdirSync(directory, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const child = nodePath.join(directory, entry.name);
    if (entry.isDirectory()) found.push(...listFiles(child));
    // A link to a file counts as the file (as in Python); links to directories are not followed.
    else if (entry.isFile() || (entry.isSymbolicLink() && statKind(child) === 'file')) found.push(child);
  }
  return found.sort();
}

const NONBLOCK = fs.constants.O_NONBLOCK || 0;

/**
 * The bytes of a regular file, opened without blocking (a FIFO must not hang the reader).
 * With `limit`, a larger file is refused before a byte is read: the error has code 'EFBIG'
 * and the file's `size`; at most `limit + 1` bytes are read in any case.
 */
function readRegularFile(path, limit = Infinity) {
  const descriptor = fs.openSync(path, fs.constants.O_RDONLY | NONBLOCK);
  try {
    const stats = fs.fstatSync(descriptor);
    if (!stats.isFile()) {
      const reason = stats.isDirectory() ? 'Is a directory' : 'not a regular file';
      throw Object.assign(new Error(reason), { code: stats.isDirectory() ? 'EISDIR' : 'ENOTREG' });
    }
    if (stats.size > limit) throw Object.assign(new Error('file too large'), { code: 'EFBIG', size: stats.size });
    const chunks = [];
    let remaining = Number.isFinite(limit) ? limit + 1 : stats.size + 1;
    for (;;) {
      const buffer = Buffer.alloc(Math.min(Math.max(remaining, 1), 1 << 16));
      const count = fs.readSync(descriptor, buffer, 0, buffer.length, null);
      if (count === 0) break;
      chunks.push(buffer.subarray(0, count));
      remaining -= count;
      if (Number.isFinite(limit) && remaining <= 0) break;
    }
    return Buffer.concat(chunks);
  } finally {
    fs.closeSync(descriptor);
  }
}

/**
 * A host over the filesystem.
 * @param {{cwd?: string, builtinRoot?: string|null, searchPath?: string}} [options]
 */
export function fsHost({ cwd = process.cwd(), builtinRoot = BUILTIN_ROOT, searchPath } = {}) {
  const base = nodePath.resolve(cwd);
  const builtin = builtinRoot && fs.existsSync(builtinRoot) ? realpath(builtinRoot) : null;
  return {
    cwd: base,
    builtinRoot: builtin,
    searchPath: searchPath ?? process.env.QRECIPE_PATH ?? '',
    pathSeparator: nodePath.delimiter,
    expandUser,
    absolute: (path) => nodePath.resolve(base, expandUser(String(path))),
    realpath,
    stat: statKind,
    read: readRegularFile,
    list: listFiles,
  };
}

function withHost(options = {}) {
  return {
    hash: nodeSha256,
    ...options,
    host:
      options.host || fsHost({ cwd: options.cwd, builtinRoot: options.builtinRoot, searchPath: options.searchPath }),
  };
}

/**
 * The flat canonical form of a recipe (built-in name, name under a search root, or path).
 * @param {string} nameOrPath
 * @param {{path?: string[], cwd?: string, provenance?: boolean, onNotice?: (message: string) => void}} [options]
 */
export function resolve(nameOrPath, options = {}) {
  return core.resolve(nameOrPath, withHost(options));
}

/** The recipe with every import expanded (no defaults filled in). */
export function load(nameOrPath, options = {}) {
  return core.load(nameOrPath, withHost(options));
}

/** Every problem of a recipe, snippet or flat JSON file (imports resolved); empty when valid. */
export function validateFile(target, options = {}) {
  return core.validateTarget(target, withHost(options));
}

/** Every built-in recipe with its description, sorted by name. */
export function listRecipes(options = {}) {
  return core.listRecipes(withHost(options));
}

/**
 * Load and check a flat recipe from a path, JSON text or an object.
 * @returns {object} the flat recipe; throws a RecipeError when invalid
 */
export function loadFlat(source, options = {}) {
  if (typeof source === 'string' && !source.trimStart().startsWith('{')) {
    // A path: a flat recipe file, or a checkpoint directory holding one.
    const host = fsHost({ cwd: options.cwd });
    const file = core.flatFileName(source, host);
    const raw = core.readFile(host, host.absolute(file), file, 'flat recipe');
    return core.loadFlat(raw, { hash: nodeSha256, ...options, file });
  }
  return core.loadFlat(source, { hash: nodeSha256, ...options });
}

/** Whether a target is checked as a flat recipe: a `.json` file or a checkpoint directory. */
export function isFlatFile(target, options = {}) {
  return core.isFlatFile(target, options.host || fsHost({ cwd: options.cwd }));
}

/** Check a flat recipe (schema and fingerprint): `{valid, errors}`. */
export function validateFlat(source, options = {}) {
  return core.validateFlat(source, { hash: nodeSha256, ...options });
}

/** The fingerprint of a flat recipe, computed from its content. */
export function fingerprint(flat) {
  return core.fingerprint(flat, nodeSha256);
}
