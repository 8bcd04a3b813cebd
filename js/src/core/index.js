// The browser-safe core of qrecipe: no Node built-ins. Files are read through a host (see
// `memoryHost` for a loader callback or an in-memory map); `../node.js` adds the filesystem.

import { everyProblem } from './allproblems.js';
import { canonicalBytes, canonicalJson, fingerprint, prettyJson } from './canonical.js';
import {
  FingerprintMismatchError,
  RecipeError,
  RecipeNotFoundError,
  RecipeSemanticError,
  SchemaValidationError,
  sortDiagnostics,
} from './errors.js';
import { isObject } from './data.js';
import { readFile } from './files.js';
import { flatten } from './flatten.js';
import { parseJson } from './jsonio.js';
import { Library, stripSuffix } from './library.js';
import { ENTRY_LIST, HEADER, RECIPE, RECIPE_METADATA, Resolver, detectKind } from './resolver.js';
import { SCHEMAS, SCHEMA_TEXTS, checkSchema, schemaDiagnostics } from './schemacheck.js';
import { catalogSchemaText } from '../../schema/schemas.js';
import { sha256Hex } from './sha256.js';
import { kindOfValue, pyRepr } from './show.js';
import { YamlDocument, parseYaml } from './yamlio.js';

export * from './errors.js';
export { canonicalBytes, canonicalJson, detectKind, fingerprint, prettyJson, sha256Hex, sortDiagnostics };
export { Library } from './library.js';
export { Resolver, KIND_WORDS } from './resolver.js';
export { flatten } from './flatten.js';
export { parseYaml } from './yamlio.js';
export { parseJson } from './jsonio.js';
export { readFile } from './files.js';

/** The published JSON Schema `name` ("recipe" or "flat"), parsed (shared: do not mutate). */
export function schema(name = 'recipe') {
  if (!Object.prototype.hasOwnProperty.call(SCHEMAS, name)) {
    throw new Error(`unknown schema ${pyRepr(name)}; known schemas: ${Object.keys(SCHEMAS).join(', ')}`);
  }
  return SCHEMAS[name];
}

/** The exact published text of schema `name` ("recipe" or "flat"), or of the editor "catalog". */
export function schemaText(name = 'recipe') {
  if (name === 'catalog') return catalogSchemaText;
  schema(name);
  return SCHEMA_TEXTS[name];
}

function outcome(diagnostics) {
  return { valid: diagnostics.length === 0, errors: diagnostics.map((d) => d.toJSON()) };
}

function documentDiagnostics(documents, file, kind) {
  if (!documents.length || documents.every((d) => d.data === null)) {
    return [RecipeSemanticError.diagnostic(`${file} is empty`, { file, line: 1, column: 1 })];
  }
  if (documents.length === 2) {
    const [header, body] = documents;
    if (header.data !== null && !isObject(header.data)) {
      return [
        SchemaValidationError.diagnostic(
          `the first of two YAML documents must be a mapping holding only 'imports', got ${kindOfValue(header.data)}`,
          { file, line: header.start[0], column: header.start[1] },
        ),
      ];
    }
    const diagnostics = schemaDiagnostics(header.data || {}, header, file, { definition: HEADER });
    if (!Array.isArray(body.data)) {
      diagnostics.push(
        SchemaValidationError.diagnostic(
          `the second of two YAML documents must be a list of quant_cfg entries, got ${kindOfValue(body.data)}`,
          {
            file,
            line: body.start[0],
            column: body.start[1],
            hint: "only list snippets use two documents; put 'imports' in the mapping itself",
          },
        ),
      );
    } else {
      diagnostics.push(...schemaDiagnostics(body.data, body, file, { definition: kind || ENTRY_LIST }));
    }
    return diagnostics;
  }
  const [doc] = documents;
  if (!isObject(doc.data) && !Array.isArray(doc.data)) {
    return [
      SchemaValidationError.diagnostic(
        `a recipe or snippet must be a mapping or a list, got ${kindOfValue(doc.data)}`,
        {
          file,
          line: doc.start[0],
          column: doc.start[1],
        },
      ),
    ];
  }
  return schemaDiagnostics(doc.data, doc, file, { definition: kind || null });
}

/**
 * Check one recipe or snippet document against the authoring schema (imports are not followed).
 * @param {string|Uint8Array|object|unknown[]} input YAML/JSON text, bytes, or parsed data
 * @param {string|null} [kind] a `$defs` name of recipe.schema.json; by default told by shape
 * @param {{file?: string}} [options]
 */
export function validate(input, kind = null, { file = '<input>' } = {}) {
  if (kind !== null && !Object.prototype.hasOwnProperty.call(SCHEMAS.recipe.$defs, kind)) {
    throw new Error(`unknown kind ${pyRepr(kind)}; known kinds: ${Object.keys(SCHEMAS.recipe.$defs).join(', ')}`);
  }
  try {
    const documents =
      typeof input === 'string' || input instanceof Uint8Array ? parseYaml(input, file) : [new YamlDocument(input)];
    return outcome(documentDiagnostics(documents, file, kind));
  } catch (error) {
    if (error instanceof RecipeError) return outcome(error.diagnostics);
    throw error;
  }
}

/**
 * Parse and check a flat recipe; throws a RecipeError when it is not valid or its fingerprint
 * does not match its content.
 * @param {string|Uint8Array|object} input JSON text, bytes or a parsed document
 * @param {{file?: string, hash?: (bytes: Uint8Array) => string}} [options]
 * @returns {object} the flat recipe
 */
export function loadFlat(input, { file, hash = sha256Hex } = {}) {
  let data;
  let doc = null;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const name = file || '<flat recipe text>';
    doc = parseJson(input, name);
    data = doc.data;
    file = name;
  } else {
    data = JSON.parse(JSON.stringify(input));
    file = file || '<flat recipe>';
  }
  checkSchema(data, doc, file, { schema: 'flat' });
  const expected = fingerprint(data, hash);
  if (data.fingerprint !== expected) {
    const [line, column] = doc ? doc.position('/fingerprint') : [null, null];
    throw new FingerprintMismatchError(`fingerprint ${data.fingerprint} does not match the content (${expected})`, {
      file,
      line,
      column,
      pointer: '/fingerprint',
      hint: "the file was edited after it was resolved; regenerate it with 'qrecipe resolve'",
    });
  }
  return data;
}

/**
 * Check a flat recipe (schema and fingerprint).
 * @returns {{valid: boolean, errors: object[]}}
 */
export function validateFlat(input, options = {}) {
  try {
    loadFlat(input, options);
    return outcome([]);
  } catch (error) {
    if (error instanceof RecipeError) return outcome(error.diagnostics);
    throw error;
  }
}

// ------------------------------------------------------------------ hosts
function normalize(path) {
  const parts = [];
  for (const part of path.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/**
 * A host serving files from memory: a map of absolute POSIX paths to text, or a loader
 * callback `(path) => string | Uint8Array | null`. Built-in recipes (a map of library-relative
 * paths to text, e.g. `builtinRecipes` from `qrecipe/recipes/bundle.js`) appear under /builtin.
 * @param {{files?: Record<string, string|Uint8Array>, loader?: (path: string) => string|Uint8Array|null|undefined, cwd?: string, builtin?: Record<string, string>|null, searchPath?: string}} [options]
 */
export function memoryHost({ files = {}, loader = null, cwd = '/project', builtin = null, searchPath = '' } = {}) {
  const BUILTIN = '/builtin';
  const fetch = (path) => {
    if (builtin && path.startsWith(`${BUILTIN}/`)) {
      const text = builtin[path.slice(BUILTIN.length + 1)];
      return text === undefined ? null : text;
    }
    if (Object.prototype.hasOwnProperty.call(files, path)) return files[path];
    return loader ? (loader(path) ?? null) : null;
  };
  const isDirectory = (path) => {
    if (path === '/' || path === normalize(cwd) || (builtin && path === BUILTIN)) return true;
    const prefix = `${path}/`;
    if (Object.keys(files).some((name) => name.startsWith(prefix))) return true;
    if (builtin && path.startsWith(`${BUILTIN}/`)) {
      const relative = `${path.slice(BUILTIN.length + 1)}/`;
      if (Object.keys(builtin).some((name) => name.startsWith(relative))) return true;
    }
    return ['recipe', 'metadata'].some((stem) => ['.yaml', '.yml'].some((s) => fetch(`${path}/${stem}${s}`) !== null));
  };
  return {
    cwd: normalize(cwd),
    builtinRoot: builtin ? BUILTIN : null,
    searchPath,
    pathSeparator: ':',
    absolute: (path) => normalize(path.startsWith('/') ? path : `${cwd}/${path}`),
    realpath: (path) => normalize(path),
    stat(path) {
      if (fetch(path) !== null) return 'file';
      return isDirectory(path) ? 'dir' : null;
    },
    read(path) {
      const content = fetch(path);
      if (content === null) {
        if (isDirectory(path)) throw Object.assign(new Error('Is a directory'), { code: 'EISDIR' });
        throw Object.assign(new Error('No such file or directory'), { code: 'ENOENT' });
      }
      return content;
    },
    list(directory) {
      const names = [...Object.keys(files)];
      if (builtin) names.push(...Object.keys(builtin).map((name) => `${BUILTIN}/${name}`));
      return names.filter((name) => name.startsWith(`${directory}/`)).sort();
    },
  };
}

// ------------------------------------------------------------------ resolution
/** Renamed built-ins: old name -> current name (from the library's deprecated.yaml). */
function deprecatedNames(library) {
  const root = library.roots[0]?.label === 'builtin' ? library.roots[0] : null;
  if (!root) return {};
  const file = `${root.path}/deprecated.yaml`;
  if (library.host.stat(file) !== 'file') return {};
  const documents = parseYaml(library.host.read(file), 'builtin:deprecated.yaml');
  const data = documents[0]?.data;
  const mapping = isObject(data) && isObject(data.deprecated) ? data.deprecated : {};
  return Object.fromEntries(Object.entries(mapping).map(([k, v]) => [String(k), String(v)]));
}

/** Find a recipe by name or path; renamed built-ins resolve with a notice. */
export function locate(nameOrPath, library, onNotice = null) {
  const found = library.findRecipe(nameOrPath);
  if (found) return found;
  const name = stripSuffix(String(nameOrPath));
  const renamed = deprecatedNames(library)[name];
  if (renamed !== undefined) {
    if (onNotice) onNotice(`recipe name ${pyRepr(name)} is deprecated; use ${pyRepr(renamed)}`);
    const again = library.findRecipe(renamed);
    if (again) return again;
  }
  let hint = `searched ${library.searched()}; 'qrecipe list' shows the built-ins; add directories with --path`;
  const similar = library.similarName(String(nameOrPath));
  if (similar !== null) hint = `did you mean ${pyRepr(similar)}? ${hint}`;
  throw new RecipeNotFoundError(`recipe ${pyRepr(String(nameOrPath))} was not found`, {
    file: String(nameOrPath),
    hint,
  });
}

/**
 * @typedef {object} ResolveOptions
 * @property {string[]} [path] extra search roots
 * @property {object} [host] file access (see memoryHost); required by the core
 * @property {boolean} [useEnv] read extra roots from the host's search path (QRECIPE_PATH)
 * @property {boolean} [builtin] search the built-in library
 * @property {boolean} [provenance] record where each quant_cfg entry came from
 * @property {(bytes: Uint8Array) => string} [hash] hex SHA-256
 * @property {(message: string) => void} [onNotice] receives deprecation notices
 */

export function libraryFor(options = {}) {
  if (!options.host) throw new Error('a host is required: pass {host} (see memoryHost)');
  return new Library(options.host, {
    path: options.path || [],
    useEnv: options.useEnv !== false,
    builtin: options.builtin !== false,
  });
}

/** Expand a recipe's imports: the tree as written otherwise (no defaults filled in). */
export function expand(nameOrPath, options = {}) {
  const library = libraryFor(options);
  const resolver = new Resolver(library);
  return resolver.resolve(locate(nameOrPath, library, options.onNotice));
}

/** The recipe with every import expanded (no defaults filled in). */
export function load(nameOrPath, options = {}) {
  return expand(nameOrPath, options).tree;
}

/**
 * The flat canonical form of a recipe, with its fingerprint (docs/flat-form.md).
 * @param {string} nameOrPath built-in name, name under a search root, or path
 * @param {ResolveOptions} [options]
 */
export function resolve(nameOrPath, options = {}) {
  return flatten(expand(nameOrPath, options), { provenance: options.provenance, hash: options.hash });
}

/** The flat recipe inside a checkpoint directory written by `qrecipe quantize` (Python). */
export const CHECKPOINT_RECIPE = 'recipe.flat.json';

/** The flat recipe of a checkpoint directory, named from the directory as given. */
function checkpointRecipe(directory) {
  return `${String(directory).replace(/\/+$/, '')}/${CHECKPOINT_RECIPE}`;
}

/**
 * Whether a target is checked as a flat recipe: a `.json` file, or (given a host to look with)
 * a checkpoint directory that holds its flat recipe.
 */
export function isFlatFile(target, host = null) {
  if (String(target).endsWith('.json')) return true;
  return host !== null && host.stat(host.absolute(checkpointRecipe(target))) === 'file';
}

/** The flat recipe a target names: the file itself, or a checkpoint directory's. */
export function flatFileName(target, host) {
  return host.stat(host.absolute(String(target))) === 'dir' ? checkpointRecipe(target) : String(target);
}

/**
 * Every problem of a recipe, snippet or flat JSON file, with imports resolved (empty when valid).
 * @param {string} target
 * @param {ResolveOptions} [options]
 * @returns {import('./errors.js').Diagnostic[]}
 */
export function validateTarget(target, options = {}) {
  try {
    const host = options.host;
    if (!host) throw new Error('a host is required: pass {host} (see memoryHost)');
    if (isFlatFile(target, host)) {
      const file = flatFileName(target, host);
      loadFlat(readFile(host, host.absolute(file), file, 'flat recipe'), { file, hash: options.hash });
      return [];
    }
    const library = libraryFor(options);
    const resolver = new Resolver(library);
    const located = locate(target, library, options.onNotice);
    if (library.host.stat(located.path) === 'dir') {
      flatten(resolver.resolve(located), { hash: options.hash });
      return [];
    }
    return validateFile(resolver, located, options);
  } catch (error) {
    if (error instanceof RecipeError) return error.diagnostics;
    throw error;
  }
}

/** The problems of a recipe or snippet file: past the first that stops resolving it, too. */
function validateFile(resolver, located, options) {
  const finish = (resolution) => flatten(resolution, { hash: options.hash });
  let resolution;
  try {
    const source = resolver.read(located);
    if (source.kind !== RECIPE) {
      resolver.resolveSnippet(located);
      return [];
    }
    resolution = resolver.resolve(located);
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
    return everyProblem(resolver, located, error.diagnostics, finish);
  }
  finish(resolution);
  return [];
}

/** Every built-in recipe, then every recipe under each `path` root; sorted by name in each. */
export function listRecipes(options = {}) {
  const library = libraryFor(options);
  const resolver = new Resolver(library);
  const groups = [['builtin', library.builtinRecipes()]];
  for (const root of library.extraRoots) groups.push([root.label, library.yamlFiles(root.path, root)]);
  const infos = [];
  for (const [label, files] of groups) {
    const found = files.map((located) => recipeInfo(resolver, located, label)).filter(Boolean);
    infos.push(...found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
  }
  return infos;
}

function recipeInfo(resolver, located, root) {
  let source;
  try {
    source = resolver.read(located);
  } catch (error) {
    if (error instanceof RecipeError) return null;
    throw error;
  }
  if (source.kind !== RECIPE) return null;
  const name = stripSuffix(located.path.slice(located.root.path.length + 1));
  const metadata = isObject(source.body.metadata) ? source.body.metadata : {};
  const description = String(metadata.description ?? '').trim();
  return { name, description: description.split(/\s+/).filter(Boolean).join(' '), path: located.path, root };
}

export { RECIPE_METADATA, SchemaValidationError };
