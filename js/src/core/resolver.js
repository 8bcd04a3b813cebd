// Expand `imports:` / `$import` into one recipe tree, remembering where everything came from.
//
// Semantics (compatible with ModelOpt's recipe loader):
// * `imports:` maps local names to snippet paths and is visible only in the file declaring it.
// * In a mapping, `$import: name` or `$import: [a, b]` merges the named dict snippets
//   shallowly, in order, and the mapping's own keys win over all of them.
// * In `quant_cfg`, an item that is exactly `{$import: name}` is replaced by the snippet: a
//   list snippet is spliced in place, a dict snippet becomes one entry.
// * A snippet is resolved in its own scope first (its own imports), recursively; a file that
//   imports itself through its ancestors is an error naming the whole chain.

import {
  ERROR_CLASSES,
  ImportCycleError,
  ImportKindError,
  ImportNotFoundError,
  RecipeError,
  RecipeLimitError,
  RecipeSemanticError,
  SchemaValidationError,
  sortDiagnostics,
} from './errors.js';
import { closestMatch } from './difflib.js';
import { readFile } from './files.js';
import { SUFFIXES } from './library.js';
import { schemaDiagnostics } from './schemacheck.js';
import { kindOfValue, show } from './show.js';
import { deepCopy, hasKey, isObject, keepKeyOrder, setKey, writtenKeys } from './data.js';
import { MAX_IMPORT_DEPTH, MAX_IMPORTED_FILES, MAX_RESOLVED_BYTES, MAX_RESOLVED_VALUES } from './limits.js';
import { joinPointer, parseYaml } from './yamlio.js';

export { MAX_IMPORT_DEPTH, MAX_IMPORTED_FILES };

// What a file holds, told apart by shape exactly as the schema's top-level if/then/else does.
export const RECIPE = 'recipe';
export const RECIPE_METADATA = 'directory_recipe_file';
export const METADATA_FILE = 'metadata_file';
export const QUANTIZE_FILE = 'quantize_file';
export const ENTRY_LIST = 'entry_list';
export const ENTRY = 'entry_snippet';
export const ALGORITHM = 'algorithm_snippet';
export const ATTRIBUTES = 'attributes_snippet';
export const HEADER = 'list_snippet_header';

export const KIND_WORDS = {
  [RECIPE]: 'a recipe',
  [RECIPE_METADATA]: 'a recipe.yml of a directory recipe',
  [METADATA_FILE]: 'a metadata file of a directory recipe',
  [QUANTIZE_FILE]: 'a quantize section',
  [ENTRY_LIST]: 'a list snippet of quant_cfg entries',
  [ENTRY]: 'a quant_cfg entry snippet',
  [ALGORITHM]: 'an algorithm snippet',
  [ATTRIBUTES]: 'a quantizer-attributes snippet',
  [HEADER]: 'an imports-only document',
};

// The mapping kind each place that accepts $import needs.
const PLACE_KIND = {
  quantize: QUANTIZE_FILE,
  algorithm: ALGORITHM,
  entry: ENTRY,
  attributes: ATTRIBUTES,
};
const KIND_PLACE = Object.fromEntries(Object.entries(PLACE_KIND).map(([place, kind]) => [kind, place]));

export { deepCopy };

/** Bytes of a string in UTF-8. */
export function textSize(text) {
  let size = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) size += 1;
    else if (code >= 0xd800 && code <= 0xdbff) {
      size += 2; // a pair: four bytes for two units
      i += 1;
    } else size += 2;
  }
  return size;
}

/** The values in `value` (itself included) and the bytes of its strings and keys. */
export function measure(value) {
  if (Array.isArray(value)) {
    let values = 1;
    let size = 0;
    for (const item of value) {
      const [innerValues, innerSize] = measure(item);
      values += innerValues;
      size += innerSize;
    }
    return [values, size];
  }
  if (isObject(value)) {
    let values = 1;
    let size = 0;
    for (const key of Object.keys(value)) {
      const [innerValues, innerSize] = measure(value[key]);
      values += innerValues;
      size += innerSize + textSize(key);
    }
    return [values, size];
  }
  return [1, typeof value === 'string' ? textSize(value) : 0];
}

const NOTHING_DROPPED = new Set();

/** The kind of a parsed file, by shape. */
export function detectKind(data) {
  if (Array.isArray(data)) return ENTRY_LIST;
  if (!isObject(data)) return ATTRIBUTES;
  const has = (key) => hasKey(data, key);
  if (has('metadata') || has('quantize')) return RECIPE;
  if (has('recipe_type')) return METADATA_FILE;
  if (has('quant_cfg') || has('algorithm')) return QUANTIZE_FILE;
  if (has('quantizer_name') || has('parent_class') || has('cfg')) return ENTRY;
  if (has('method')) return ALGORITHM;
  const keys = Object.keys(data);
  if (keys.length === 1 && keys[0] === 'imports') return HEADER;
  return ATTRIBUTES;
}

/** A parsed, schema-checked recipe or snippet file. */
export class SourceFile {
  constructor(fields) {
    // Values left out of the expansion (JSON pointers into the body): parts of a file with
    // problems, so that the rest of it can still be checked (see allproblems.js).
    this.dropped = NOTHING_DROPPED;
    Object.assign(this, fields);
  }

  get display() {
    return this.located.display;
  }

  /** The values and bytes of text of the body as written (see `measure`). */
  get size() {
    if (!this.measured) this.measured = measure(this.body);
    return this.measured;
  }

  where(pointer, { key = false, doc = null } = {}) {
    return (doc || this.bodyDoc).position(pointer, { key });
  }
}

/** Where a resolved mapping was written (line and column are looked up when asked for). */
export class Origin {
  constructor(file, pointer, chain, document = null) {
    this.file = file;
    this.pointer = pointer;
    this.chain = chain;
    this.document = document;
  }

  get line() {
    return this.position('')[0];
  }

  get column() {
    return this.position('')[1];
  }

  /** Line and column of `pointer + suffix`, or of the nearest enclosing value (looked up when asked for). */
  position(suffix) {
    if (this.document === null) return [null, null];
    return this.document.position(this.pointer + suffix) || [null, null];
  }
}

/** The result of expanding one recipe: the tree plus the origin of each mapping in it. */
export class Resolution {
  constructor(tree, origins, recipe) {
    this.tree = tree;
    this.origins = origins;
    this.recipe = recipe;
  }

  origin(object) {
    return object !== null && typeof object === 'object' ? this.origins.get(object) || null : null;
  }
}

function under(diagnostic, pointer) {
  return diagnostic.pointer === pointer || diagnostic.pointer.startsWith(`${pointer}/`);
}

function rethrowAs(error, diagnostics) {
  const Cls = ERROR_CLASSES[error.code] || RecipeError;
  return new Cls(diagnostics);
}

/** Reads and expands recipes; caches parsed files for the lifetime of the object. */
export class Resolver {
  /** @param {import('./library.js').Library} library */
  constructor(library) {
    this.library = library;
    this.host = library.host;
    this.files = new Map();
  }

  /** Parse and schema-check one file (cached by path). */
  read(located, { standaloneKind = null } = {}) {
    // By path and by the kind a file is read as (a directory recipe's recipe.yml is read as one).
    const cacheKey = `${located.path}\0${standaloneKind}`;
    const cached = this.files.get(cacheKey);
    if (cached) return cached;
    const raw = readFile(this.host, located.path, located.display);
    const source = this.parse(raw, located, { standaloneKind });
    this.files.set(cacheKey, source);
    return source;
  }

  /**
   * The import problems of a file that has schema problems elsewhere: snippets that are not found
   * and `$import` names that are not declared, which no schema problem can cause once `imports:`
   * itself is well-formed (the caller has checked that), so that one misspelt key does not hide
   * them.
   */
  importProblems(located, documents, body, header, importsDoc, kind) {
    const imports = deepCopy(header.imports || {});
    const bodyDoc = documents[documents.length - 1];
    const source = new SourceFile({ located, documents, body, bodyDoc, imports, importsDoc, kind });
    try {
      new Expansion(this).checkDeclaredImports(source, []);
    } catch (error) {
      if (!(error instanceof RecipeError)) throw error;
      return error.diagnostics;
    }
    return [];
  }

  parse(raw, located, { standaloneKind = null } = {}) {
    const display = located.display;
    const documents = parseYaml(raw, display);
    if (!documents.length || documents.every((d) => d.data === null)) {
      throw new RecipeSemanticError(`${display} is empty`, { file: display, line: 1, column: 1 });
    }
    let imports;
    let importsDoc;
    let body;
    let bodyDoc;
    let kind;
    if (documents.length === 2) {
      const [header, second] = documents;
      bodyDoc = second;
      if (header.data !== null && !isObject(header.data)) {
        throw new SchemaValidationError(
          `the first of two YAML documents must be a mapping holding only 'imports', got ${kindOfValue(header.data)}`,
          {
            file: display,
            line: header.start[0],
            column: header.start[1],
          },
        );
      }
      const diagnostics = schemaDiagnostics(header.data || {}, header, display, { definition: HEADER });
      const headerProblems = diagnostics.length > 0;
      if (!Array.isArray(second.data)) {
        diagnostics.push(
          SchemaValidationError.diagnostic(
            `the second of two YAML documents must be a list of quant_cfg entries, got ${kindOfValue(second.data)}`,
            {
              file: display,
              line: second.start[0],
              column: second.start[1],
              hint: "only list snippets use two documents; put 'imports' in the mapping itself",
            },
          ),
        );
      } else {
        diagnostics.push(...schemaDiagnostics(second.data, second, display, { definition: ENTRY_LIST }));
      }
      if (diagnostics.length) {
        if (!headerProblems) {
          diagnostics.push(
            ...this.importProblems(located, documents, second.data, header.data || {}, header, ENTRY_LIST),
          );
        }
        throw new SchemaValidationError(sortDiagnostics(diagnostics));
      }
      imports = deepCopy((header.data || {}).imports || {});
      importsDoc = header;
      body = second.data;
      kind = ENTRY_LIST;
    } else {
      bodyDoc = documents[0];
      body = bodyDoc.data;
      if (!isObject(body) && !Array.isArray(body)) {
        throw new SchemaValidationError(`a recipe or snippet must be a mapping or a list, got ${kindOfValue(body)}`, {
          file: display,
          line: bodyDoc.start[0],
          column: bodyDoc.start[1],
        });
      }
      kind = standaloneKind || detectKind(body);
      const definition = [RECIPE_METADATA, METADATA_FILE].includes(standaloneKind) ? standaloneKind : null;
      const diagnostics = schemaDiagnostics(body, bodyDoc, display, { definition });
      if (diagnostics.length) {
        if (isObject(body) && !diagnostics.some((d) => under(d, '/imports'))) {
          const withoutImports = {};
          for (const key of Object.keys(body)) if (key !== 'imports') setKey(withoutImports, key, body[key]);
          diagnostics.push(...this.importProblems(located, documents, withoutImports, body, bodyDoc, kind));
        }
        throw new SchemaValidationError(sortDiagnostics(diagnostics));
      }
      imports = isObject(body) ? deepCopy(body.imports || {}) : {};
      importsDoc = bodyDoc;
      if (isObject(body)) {
        const withoutImports = {};
        for (const key of Object.keys(body)) if (key !== 'imports') setKey(withoutImports, key, body[key]);
        body = withoutImports;
      }
    }
    return new SourceFile({
      located,
      documents,
      body,
      bodyDoc,
      imports,
      importsDoc,
      kind,
    });
  }

  /**
   * A file as written, schema problems and all, for finding the problems beyond its first (null
   * when it is not even shaped like a recipe or snippet). Never cached.
   */
  unchecked(located) {
    let documents;
    try {
      documents = parseYaml(readFile(this.host, located.path, located.display), located.display);
    } catch (error) {
      if (error instanceof RecipeError) return null;
      throw error;
    }
    let holder;
    let body;
    let bodyDoc;
    let kind;
    let importsDoc;
    if (documents.length === 2 && Array.isArray(documents[1].data)) {
      [importsDoc, bodyDoc] = documents;
      holder = importsDoc.data;
      body = bodyDoc.data;
      kind = ENTRY_LIST;
    } else if (documents.length === 1 && documents[0].data !== null && typeof documents[0].data === 'object') {
      bodyDoc = importsDoc = documents[0];
      body = holder = bodyDoc.data;
      kind = detectKind(body);
      if (isObject(body)) {
        const withoutImports = {};
        for (const key of writtenKeys(body)) if (key !== 'imports') setKey(withoutImports, key, body[key]);
        body = withoutImports;
      }
    } else {
      return null;
    }
    const imports = isObject(holder) && hasKey(holder, 'imports') ? holder.imports : null;
    if (imports !== null && !isObject(imports)) return null;
    return new SourceFile({ located, documents, body, bodyDoc, imports: deepCopy(imports || {}), importsDoc, kind });
  }

  /**
   * Expand a parsed file (a recipe, or a snippet on its own): [resolution, null, null], or
   * [null, its first problem, the pointer of the import written in `source` that led to it].
   */
  expandSource(source) {
    const expansion = new Expansion(this);
    let tree;
    try {
      if (source.kind === RECIPE) tree = expansion.recipe(source);
      else {
        const value = expansion.snippet(source, [], { place: null, pointer: '', importer: null });
        tree = isObject(value) ? value : {};
      }
    } catch (error) {
      if (!(error instanceof RecipeError)) throw error;
      const sites = (expansion.failedImports || []).filter(([file]) => file === source).map(([, at]) => at);
      return [null, error, sites.length ? sites[0] : null];
    }
    return [new Resolution(tree, expansion.origins, source.display), null, null];
  }

  /** Expand a recipe (file or directory) into one tree without imports. */
  resolve(located) {
    const expansion = new Expansion(this);
    let tree;
    if (this.host.stat(located.path) === 'dir') {
      tree = expansion.directoryRecipe(located);
    } else {
      const source = this.read(located);
      if (source.kind !== RECIPE) {
        throw new RecipeSemanticError(`${source.display} is ${KIND_WORDS[source.kind]}, not a recipe`, {
          file: source.display,
          line: source.bodyDoc.start[0],
          column: source.bodyDoc.start[1],
          hint: "a recipe has 'metadata' (recipe_type: ptq) and 'quantize'",
        });
      }
      tree = expansion.recipe(source);
    }
    return new Resolution(tree, expansion.origins, located.display);
  }

  /** Expand a snippet file on its own (for validation): [value, kind, resolution]. */
  resolveSnippet(located) {
    const expansion = new Expansion(this);
    const source = this.read(located);
    const value = expansion.snippet(source, [], { place: null, pointer: '', importer: null });
    return [value, source.kind, new Resolution(isObject(value) ? value : {}, expansion.origins, source.display)];
  }
}

/** State of one expansion: origins of produced mappings and the import stack. */
class Expansion {
  constructor(resolver) {
    this.resolver = resolver;
    this.origins = new Map();
    this.stack = [];
    this.filesImported = 0;
    this.checked = new Set();
    // What the expanded recipe holds so far, and the imports being expanded (innermost
    // last): an import that makes it too big is named where it is written.
    this.values = 0;
    this.bytes = 0;
    this.importing = [];
    // The imports being expanded when the first problem was raised, outermost first: which
    // entry of the recipe led to a problem inside a snippet.
    this.failedImports = null;
  }

  /** Add to the size of the expanded recipe; refuse it past the limits. */
  count(values, size, source, pointer, chain) {
    this.values += values;
    this.bytes += size;
    if (this.values <= MAX_RESOLVED_VALUES && this.bytes <= MAX_RESOLVED_BYTES) return;
    const what =
      this.values > MAX_RESOLVED_VALUES
        ? `more than ${MAX_RESOLVED_VALUES} values`
        : `more than ${MAX_RESOLVED_BYTES} bytes of text`;
    let message = `the recipe expands to ${what}`;
    let at = [source, pointer, chain];
    if (this.importing.length) {
      const [importer, where, name, importChain] = this.importing[this.importing.length - 1];
      const path = hasKey(importer.imports, name) ? importer.imports[name] : name;
      message = `the recipe expands to ${what} at '$import: ${name}' (${path})`;
      at = [importer, where, importChain];
    }
    const [file, where, whereChain] = at;
    const [line, column] = file.where(where);
    throw new RecipeLimitError(message, {
      file: file.display,
      line,
      column,
      pointer: where,
      chain: whereChain,
      hint: 'an import used many times multiplies the recipe; import a snippet once, or split the recipe',
    });
  }

  /**
   * Refuse an imported snippet that crosses a limit before copying any of it. A snippet
   * without imports expands to exactly what is written in it, so it is counted at once, and
   * refused with the message its copying would end in: at the import, for the one limit it
   * crosses. Crossing both, the copying itself finds which one comes first.
   */
  refuseEarly(target, chain) {
    const [values, size] = target.size;
    const overValues = this.values + values > MAX_RESOLVED_VALUES;
    const overBytes = this.bytes + size > MAX_RESOLVED_BYTES;
    if (overValues !== overBytes) this.count(values, size, target, '', chain);
  }

  /** A copy of `value` for the expanded recipe, counted before it is made. */
  copied(value, source, pointer, chain) {
    const [values, size] = measure(value);
    this.count(values, size, source, pointer, chain);
    return deepCopy(value);
  }

  record(object, source, pointer, chain) {
    this.origins.set(object, new Origin(source.display, pointer, chain, source.bodyDoc));
  }

  // -------------------------------------------------------------- entry points
  recipe(source) {
    const chain = [source.display];
    this.checkDeclaredImports(source, chain);
    this.stack.push(source.located.real);
    this.count(1, 0, source, '', chain);
    const tree = {};
    for (const key of writtenKeys(source.body)) {
      let value = source.body[key];
      const pointer = joinPointer('', key);
      if (source.dropped.has(pointer)) continue;
      if (source.dropped.size && isObject(value)) {
        const kept = {};
        const order = writtenKeys(value).filter((k) => !source.dropped.has(joinPointer(pointer, k)));
        for (const k of order) setKey(kept, k, value[k]);
        value = keepKeyOrder(kept, order);
      }
      this.count(0, textSize(key), source, pointer, chain);
      if (key === 'quantize' && isObject(value)) {
        setKey(tree, key, this.mapping(value, source, pointer, chain, 'quantize'));
      } else {
        setKey(tree, key, this.copied(value, source, pointer, chain));
        if (isObject(tree[key])) this.record(tree[key], source, pointer, chain);
      }
    }
    this.record(tree, source, '', chain);
    this.stack.pop();
    return tree;
  }

  directoryRecipe(located) {
    const host = this.resolver.host;
    const directory = located.path;
    const part = (...stems) => {
      for (const stem of stems) {
        for (const suffix of SUFFIXES) {
          const file = `${directory}/${stem}${suffix}`;
          if (host.stat(file) === 'file') return this.resolver.library.located(file, located.root);
        }
      }
      return null;
    };
    const recipeFile = part('recipe');
    const metadataFile = recipeFile === null ? part('metadata') : null;
    const quantizeFile = part('quantize');
    let tree = {};
    let source;
    if (recipeFile !== null) {
      source = this.resolver.read(recipeFile, { standaloneKind: RECIPE_METADATA });
      if (hasKey(source.body, 'quantize') && quantizeFile !== null) {
        const [line, column] = source.where('/quantize', { key: true });
        throw new RecipeSemanticError(
          `${located.display} has both a 'quantize' section here and ${quantizeFile.display}`,
          {
            file: recipeFile.display,
            line,
            column,
            pointer: '/quantize',
            hint: 'keep the quantize section in one place',
          },
        );
      }
      tree = this.recipe(source);
    } else if (metadataFile !== null) {
      source = this.resolver.read(metadataFile, { standaloneKind: METADATA_FILE });
      tree.metadata = this.copied(source.body, source, '', [source.display]);
      this.record(tree.metadata, source, '', [source.display]);
    }
    if (quantizeFile !== null) {
      source = this.resolver.read(quantizeFile);
      if (source.kind !== QUANTIZE_FILE && source.kind !== ATTRIBUTES) {
        throw new ImportKindError(`${source.display} is ${KIND_WORDS[source.kind]}, not a quantize section`, {
          file: source.display,
          line: source.bodyDoc.start[0],
          column: source.bodyDoc.start[1],
          hint: "quantize.yml holds a mapping with 'algorithm' and 'quant_cfg'",
        });
      }
      this.stack.push(source.located.real);
      tree.quantize = this.mapping(source.body, source, '', [source.display], 'quantize');
      this.stack.pop();
    } else if (!hasKey(tree, 'quantize')) {
      throw new RecipeSemanticError(`directory recipe ${located.display} has no quantize.yml (or quantize.yaml)`, {
        file: located.display,
      });
    }
    this.record(tree, source, '', [located.display]);
    return tree;
  }

  // -------------------------------------------------------------- mappings and lists
  mapping(node, source, pointer, chain, place) {
    // The mapping, its keys and its scalar values are counted at once, before it is built.
    let values = 1;
    let size = 0;
    for (const key of writtenKeys(node)) {
      if (key === '$import') continue;
      size += textSize(key);
      const value = node[key];
      if (value === null || typeof value !== 'object') {
        values += 1;
        if (typeof value === 'string') size += textSize(value);
      }
    }
    this.count(values, size, source, pointer, chain);
    const result = {};
    // Keys in the order Python's dict keeps them: first insertion.
    const order = [];
    const put = (key, value) => {
      if (!hasKey(result, key)) order.push(key);
      setKey(result, key, value);
    };
    if (hasKey(node, '$import')) {
      const names = node.$import;
      const list = Array.isArray(names) ? names : [names];
      list.forEach((name, index) => {
        let at = joinPointer(pointer, '$import');
        if (Array.isArray(names)) at = joinPointer(at, index);
        const value = this.importValue(name, source, at, chain, place);
        if (!isObject(value)) {
          const [line, column] = source.where(at);
          throw new ImportKindError(
            `'$import: ${name}' in a mapping needs a dict snippet, but ${source.imports[name]} is a list snippet`,
            {
              file: source.display,
              line,
              column,
              pointer: at,
              chain,
              hint: "splice list snippets into quant_cfg with a list item '- $import: name'",
            },
          );
        }
        for (const key of writtenKeys(value)) put(key, value[key]);
      });
    }
    for (const key of writtenKeys(node)) {
      if (key === '$import' || (source.dropped.size && source.dropped.has(joinPointer(pointer, key)))) continue;
      put(key, this.child(place, key, node[key], source, joinPointer(pointer, key), chain));
    }
    keepKeyOrder(result, order);
    this.record(result, source, pointer, chain);
    return result;
  }

  child(place, key, value, source, pointer, chain) {
    if (place === 'quantize' && key === 'algorithm' && isObject(value)) {
      return this.mapping(value, source, pointer, chain, 'algorithm');
    }
    if (place === 'quantize' && key === 'quant_cfg' && Array.isArray(value)) {
      return this.entries(value, source, pointer, chain);
    }
    if (place === 'entry' && key === 'cfg') {
      if (isObject(value)) return this.mapping(value, source, pointer, chain, 'attributes');
      if (Array.isArray(value)) {
        this.count(1, 0, source, pointer, chain);
        return value.map((item, i) =>
          isObject(item)
            ? this.mapping(item, source, joinPointer(pointer, i), chain, 'attributes')
            : this.copied(item, source, joinPointer(pointer, i), chain),
        );
      }
    }
    if (place === 'algorithm' && isObject(value) && key.endsWith('algorithm')) {
      return this.mapping(value, source, pointer, chain, 'algorithm');
    }
    if (value === null || typeof value !== 'object') return value; // counted with the mapping that holds it
    const result = this.copied(value, source, pointer, chain);
    if (isObject(result)) this.record(result, source, pointer, chain);
    return result;
  }

  entries(items, source, pointer, chain) {
    this.count(1, 0, source, pointer, chain);
    const result = [];
    items.forEach((item, index) => {
      const at = joinPointer(pointer, index);
      if (source.dropped.size && source.dropped.has(at)) return;
      if (isObject(item) && Object.keys(item).length === 1 && hasKey(item, '$import')) {
        const names = item.$import;
        const list = Array.isArray(names) ? names : [names];
        list.forEach((name, n) => {
          let where = joinPointer(at, '$import');
          if (Array.isArray(names)) where = joinPointer(where, n);
          const value = this.importValue(name, source, where, chain, 'entry');
          if (Array.isArray(value)) result.push(...value);
          else result.push(value);
        });
      } else if (isObject(item)) {
        result.push(this.mapping(item, source, at, chain, 'entry'));
      } else {
        result.push(this.copied(item, source, at, chain));
      }
    });
    return result;
  }

  // -------------------------------------------------------------- imports
  importValue(name, source, pointer, chain, place) {
    this.importing.push([source, pointer, name, chain]);
    try {
      const target = this.loadImport(name, source, pointer, chain);
      return this.snippet(target, chain, { place, pointer, importer: source });
    } catch (error) {
      if (error instanceof RecipeError && this.failedImports === null) this.failedImports = [...this.importing];
      throw error;
    } finally {
      this.importing.pop();
    }
  }

  loadImport(name, source, pointer, chain) {
    if (!hasKey(source.imports, name)) {
      throw new ImportNotFoundError(undeclared(name, Object.keys(source.imports).sort(), source, pointer, chain));
    }
    const found = this.locateImport(name, source, chain);
    if (this.stack.includes(found.real)) {
      const cycle = [...chain, found.display];
      const [line, column] = source.where(pointer);
      throw new ImportCycleError(`import cycle: ${cycle.join(' -> ')}`, {
        file: source.display,
        line,
        column,
        pointer,
        chain: cycle,
        hint: 'a snippet must not import itself, directly or through other snippets',
      });
    }
    if (this.stack.length >= MAX_IMPORT_DEPTH || this.filesImported >= MAX_IMPORTED_FILES) {
      const [line, column] = source.where(pointer);
      const message =
        this.stack.length >= MAX_IMPORT_DEPTH
          ? `imports nest deeper than ${MAX_IMPORT_DEPTH} levels`
          : `more than ${MAX_IMPORTED_FILES} imports in one recipe`;
      throw new RecipeLimitError(message, { file: source.display, line, column, pointer, chain });
    }
    this.filesImported += 1;
    try {
      return this.resolver.read(found);
    } catch (error) {
      if (!(error instanceof RecipeError)) throw error;
      throw rethrowAs(
        error,
        error.diagnostics.map((d) => (d.chain.length ? d : d.with({ chain: [...chain, d.file || '?'] }))),
      );
    }
  }

  /** Find the file an `imports:` name refers to; errors point at that `imports:` line. */
  locateImport(name, source, chain) {
    const pathName = source.imports[name];
    const importsPointer = joinPointer('/imports', name);
    const [line, column] = source.where(importsPointer, { doc: source.importsDoc });
    const library = this.resolver.library;
    let found;
    try {
      found = library.findImport(pathName, source.located.root);
    } catch (error) {
      if (!(error instanceof RecipeError)) throw error;
      throw rethrowAs(error, error.first.with({ file: source.display, line, column, pointer: importsPointer, chain }));
    }
    if (found === null) {
      let hint = `searched ${library.searched(source.located.root)}; add a directory with --path`;
      const similar = library.similarName(pathName);
      if (similar !== null) hint = `did you mean ${show(similar)}? ${hint}`;
      throw new ImportNotFoundError(`snippet ${show(pathName)} (imported as ${show(name)}) was not found`, {
        file: source.display,
        line,
        column,
        pointer: importsPointer,
        chain,
        hint,
      });
    }
    return found;
  }

  /**
   * Every name in `imports:` must exist, used or not (ModelOpt loads them all too), and every
   * `$import` must name one of them; all such problems of a file are reported together.
   */
  checkDeclaredImports(source, chain) {
    const real = source.located.real;
    if (this.checked.has(real)) return;
    this.checked.add(real);
    const failed = [];
    for (const name of writtenKeys(source.imports)) {
      if (source.dropped.size && source.dropped.has(joinPointer('/imports', name))) continue;
      try {
        this.locateImport(name, source, chain);
      } catch (error) {
        if (!(error instanceof RecipeError)) throw error;
        failed.push(error);
      }
    }
    const missing = [...undeclaredImports(source, chain)];
    if (missing.length) failed.push(new ImportNotFoundError(missing));
    if (failed.length) {
      const ErrorType = /** @type {typeof RecipeError} */ (failed[0].constructor);
      throw new ErrorType(failed.flatMap((error) => error.diagnostics));
    }
  }

  /** The value of a snippet, expanded in its own scope. */
  snippet(target, chain, { place, pointer, importer }) {
    const newChain = [...chain, target.display];
    if (place !== null && target.kind !== ENTRY_LIST) {
      const wanted = PLACE_KIND[place];
      const onlyImports = isObject(target.body) && Object.keys(target.body).every((k) => k === '$import');
      if (target.kind !== wanted && !onlyImports) {
        const [line, column] = importer ? importer.where(pointer) : [null, null];
        throw new ImportKindError(
          `${target.display} is ${KIND_WORDS[target.kind]}, but this place needs ${KIND_WORDS[wanted]}`,
          {
            file: importer ? importer.display : target.display,
            line,
            column,
            pointer,
            chain: newChain,
          },
        );
      }
    }
    if (place !== null && place !== 'entry' && target.kind === ENTRY_LIST) {
      return []; // reported by the caller, which knows the import name
    }
    if ([RECIPE, RECIPE_METADATA, METADATA_FILE, HEADER].includes(target.kind)) {
      const [line, column] = importer ? importer.where(pointer) : target.bodyDoc.start;
      throw new ImportKindError(`${target.display} is ${KIND_WORDS[target.kind]} and cannot be imported`, {
        file: importer ? importer.display : target.display,
        line,
        column,
        pointer,
        chain: newChain,
      });
    }
    this.checkDeclaredImports(target, newChain);
    if (this.importing.length && Object.keys(target.imports).length === 0) this.refuseEarly(target, newChain);
    this.stack.push(target.located.real);
    try {
      if (target.kind === ENTRY_LIST) return this.entries(target.body, target, '', newChain);
      const ownPlace = place || KIND_PLACE[target.kind];
      if (!ownPlace) throw new Error(`no place for ${target.kind}`);
      return this.mapping(target.body, target, '', newChain, ownPlace);
    } finally {
      this.stack.pop();
    }
  }
}

/** `$import: name` where `name` is not in the file's `imports:`. */
function undeclared(name, declared, source, pointer, chain) {
  const [line, column] = source.where(pointer);
  const match = closestMatch(name, declared);
  const hint =
    match !== null
      ? `did you mean ${show(match)}?`
      : declared.length
        ? `declared names: ${declared.join(', ')}`
        : 'this file declares no imports';
  return ImportNotFoundError.diagnostic(`'$import: ${name}' names nothing in this file's 'imports:'`, {
    file: source.display,
    line,
    column,
    pointer,
    chain,
    hint,
  });
}

/** Every `$import` in a file naming nothing in its `imports:`. */
function* undeclaredImports(source, chain) {
  const declared = Object.keys(source.imports).sort();
  function* walk(node, pointer) {
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length; index++) {
        if (!source.dropped.has(joinPointer(pointer, index))) yield* walk(node[index], joinPointer(pointer, index));
      }
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const key of writtenKeys(node)) {
      const value = node[key];
      const at = joinPointer(pointer, key);
      if (source.dropped.has(at)) continue;
      if (key !== '$import') {
        yield* walk(value, at);
        continue;
      }
      const names = Array.isArray(value) ? value : [value];
      for (let index = 0; index < names.length; index++) {
        const name = names[index];
        if (typeof name !== 'string' || hasKey(source.imports, name)) continue;
        yield undeclared(name, declared, source, Array.isArray(value) ? joinPointer(at, index) : at, chain);
      }
    }
  }
  yield* walk(source.body, '');
}
