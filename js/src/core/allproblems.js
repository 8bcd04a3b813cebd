// Every independent problem of a recipe or snippet in one run (as allproblems.py).
//
// Resolving stops at the first file that cannot be read or imported, so one misspelt key or one
// missing snippet would hide every other mistake. Here the parts of the file being validated
// that have a problem are left out (a whole quant_cfg entry, a top-level value, an import name
// with every `$import` of it) and the rest is resolved and checked again, until nothing new is
// found. A problem reported at or around a part left out could be a consequence of leaving it
// out (an entry list left empty, a mapping left without a required key), so it is never
// reported; when a part cannot be left out soundly, only the problems found so far are.

import { RecipeError, sortDiagnostics } from './errors.js';
import { isObject, setKey, writtenKeys } from './data.js';
import { joinPointer } from './pointers.js';
import { ENTRY_LIST, HEADER, QUANTIZE_FILE, RECIPE, SourceFile } from './resolver.js';
import { schemaDiagnostics } from './schemacheck.js';

// Each pass resolves the recipe once more; a file with more separate problems than this is
// reported with the problems of the first passes.
export const MAX_PASSES = 16;

// Problems after which nothing else can be trusted or is worth the time.
const FINAL_CODES = new Set(['syntax', 'duplicate-key', 'limit']);

// Where the quant_cfg entries of each kind of file are.
const ENTRIES_AT = { [RECIPE]: ['quantize', 'quant_cfg'], [QUANTIZE_FILE]: ['quant_cfg'], [ENTRY_LIST]: [] };

/**
 * `first` (the problems that stopped resolving `located`) and every problem independent of them,
 * in the order they are written. `finish` checks a resolved recipe (flattens it).
 */
export function everyProblem(resolver, located, first, finish) {
  const found = [...first];
  if (first.some((d) => FINAL_CODES.has(d.code))) return found;
  const top = resolver.unchecked(located);
  if (top === null) return found;
  const dropped = new Set();
  let pending = first.filter((d) => d.file === top.display).map((d) => d.pointer);
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const units = new Set(pending.map((pointer) => unitOf(pointer, top.kind)));
    if (units.has(null)) break;
    if (dropped.size && [...units].every((unit) => dropped.has(unit))) break;
    for (const unit of units) dropped.add(unit);
    const pruned = prunedSource(top, dropped);
    if (pruned === null) break;
    const [resolution, error, site] = resolver.expandSource(pruned);
    if (resolution !== null) {
      // (Snippets are checked by resolving them alone.) Flattening fills what was left out with
      // defaults (a recipe without its metadata or algorithm), so its problems could be
      // consequences of that.
      if (top.kind !== RECIPE || !entriesAndImportsOnly(dropped)) break;
      try {
        finish(resolution);
      } catch (problems) {
        if (!(problems instanceof RecipeError)) throw problems;
        found.push(...independent(problems.diagnostics, top.display, dropped));
      }
      break;
    }
    if (error.diagnostics.some((d) => FINAL_CODES.has(d.code))) break;
    found.push(...independent(error.diagnostics, top.display, dropped));
    pending = error.diagnostics.filter((d) => d.file === top.display).map((d) => d.pointer);
    if (site !== null) pending.push(site);
  }
  return sortDiagnostics(unique(found));
}

/** Whether the parts left out of a recipe are only quant_cfg entries and import names. */
function entriesAndImportsOnly(dropped) {
  const entries = `/${ENTRIES_AT[RECIPE].join('/')}/`;
  return [...dropped].every((p) => p.startsWith('/imports/') || p.startsWith(entries));
}

function unique(diagnostics) {
  const seen = new Set();
  return diagnostics.filter((d) => {
    const key = JSON.stringify([d.code, d.file, d.line, d.column, d.pointer, d.message]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Whether one pointer is the other or lies inside it. */
function related(pointer, other) {
  return pointer === other || pointer.startsWith(`${other}/`) || other.startsWith(`${pointer}/`);
}

/** The problems that cannot be a consequence of leaving out `dropped` parts of `file`. */
function independent(diagnostics, file, dropped) {
  return diagnostics.filter((d) => d.file !== file || ![...dropped].some((p) => related(d.pointer, p)));
}

/**
 * The part of a file to leave out for a problem at `pointer`: an `imports:` name
 * (`/imports/<name>`), a quant_cfg entry, or a value at most two levels down in a recipe (one in
 * a snippet); null when the problem is in the file as a whole.
 */
function unitOf(pointer, kind) {
  let tokens = pointer.split('/').slice(1);
  if (tokens[0] === 'imports') return tokens.length >= 2 ? `/imports/${tokens[1]}` : null;
  const entriesAt = Object.prototype.hasOwnProperty.call(ENTRIES_AT, kind) ? ENTRIES_AT[kind] : null;
  if (entriesAt !== null) {
    const depth = entriesAt.length;
    const inEntries = entriesAt.every((token, i) => tokens[i] === token);
    if (inEntries && tokens.length > depth && /^[0-9]+$/.test(tokens[depth])) {
      return `/${tokens.slice(0, depth + 1).join('/')}`;
    }
  }
  if (tokens.includes('$import')) tokens = tokens.slice(0, tokens.indexOf('$import')); // the mapping that imports
  tokens = tokens.slice(0, kind === RECIPE ? 2 : 1);
  return tokens.length ? `/${tokens.join('/')}` : null;
}

/**
 * `top` without the parts in `dropped` (adding every `$import` of a dropped import name to it),
 * or null when what is left is not a well-formed file.
 */
function prunedSource(top, dropped) {
  const names = new Set([...dropped].filter((p) => p.startsWith('/imports/')).map((p) => p.split('/')[2]));
  for (const site of importSites(top.body, '', names)) {
    const unit = unitOf(site, top.kind);
    if (unit === null) return null;
    dropped.add(unit);
  }
  const values = new Set(dropped); // its import names are not looked up, but still declared
  const imports = {};
  for (const key of writtenKeys(top.imports)) if (!names.has(token(key))) setKey(imports, key, top.imports[key]);
  const pruned = new SourceFile({ ...top, dropped: values });
  const checks = [];
  if (top.kind === ENTRY_LIST && top.documents.length === 2) {
    checks.push([without(Object.keys(imports).length ? { imports } : {}, values), HEADER]);
    checks.push([without(top.body, values), ENTRY_LIST]);
  } else {
    let whole = without(top.body, values);
    if (isObject(whole) && isObject(top.bodyDoc.data) && Object.prototype.hasOwnProperty.call(top.bodyDoc.data, 'imports')) {
      const withImports = { imports };
      for (const key of writtenKeys(whole)) setKey(withImports, key, whole[key]);
      whole = withImports;
    }
    checks.push([whole, null]);
  }
  for (const [data, definition] of checks) {
    for (const problem of schemaDiagnostics(data, null, null, { definition })) {
      // Only what leaving parts out explains (a list left empty, a key left missing).
      const explained = [...dropped].some((p) => p === problem.pointer || p.startsWith(`${problem.pointer}/`));
      if (!explained) return null;
    }
  }
  return pruned;
}

function token(name) {
  return joinPointer('', name).slice(1);
}

function without(value, dropped, pointer = '') {
  if (Array.isArray(value)) {
    const kept = [];
    value.forEach((item, index) => {
      const at = joinPointer(pointer, index);
      if (!dropped.has(at)) kept.push(without(item, dropped, at));
    });
    return kept;
  }
  if (isObject(value)) {
    const kept = {};
    for (const key of writtenKeys(value)) {
      const at = joinPointer(pointer, key);
      if (!dropped.has(at)) setKey(kept, key, without(value[key], dropped, at));
    }
    return kept;
  }
  return value;
}

/** Where `$import` names one of `names` (escaped as pointer tokens). */
function* importSites(value, pointer, names) {
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) yield* importSites(value[index], joinPointer(pointer, index), names);
  } else if (isObject(value)) {
    for (const key of writtenKeys(value)) {
      const item = value[key];
      const at = joinPointer(pointer, key);
      if (key !== '$import') {
        yield* importSites(item, at, names);
        continue;
      }
      const list = Array.isArray(item) ? item : [item];
      for (let index = 0; index < list.length; index++) {
        const name = list[index];
        if (typeof name === 'string' && names.has(token(name))) yield Array.isArray(item) ? joinPointer(at, index) : at;
      }
    }
  }
}
