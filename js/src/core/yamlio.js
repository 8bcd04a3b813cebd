// Safe YAML loading that remembers where every value came from.
//
// The `yaml` package parses the text into a document tree (with source offsets) using its
// failsafe schema, so every plain scalar stays a string; plain data is then built here, with
// scalar types resolved by the YAML 1.1 rules recipes are read with everywhere (`yes`, `on`,
// `0x1f`, `1_000`, timestamps...), so that both implementations see the same values. Building
// ourselves also lets us record the line and column of every value and key by JSON pointer,
// reject what a recipe must not contain (duplicate keys, non-string keys, merge keys, dates,
// custom tags, non-finite numbers) and bound the work of hostile files: size, nesting depth
// and the number of values visited, which is what stops alias-expansion bombs.

import { LineCounter, Scalar, isAlias, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import {
  Diagnostic,
  DuplicateKeyError,
  RecipeLimitError,
  RecipeSyntaxError,
} from './errors.js';
import { pyRepr } from './show.js';

export const MAX_FILE_BYTES = 1 << 20;
export const MAX_DEPTH = 64;
export const MAX_NODES = 100_000;
export const MAX_DOCUMENTS = 2;
const MAX_SAFE_INTEGER = 2n ** 53n - 1n;
// The YAML parser recurses once per nesting level; texts that could nest deeper than this are
// cut where they get there (the depth limit is reported long before).
const PARSE_DEPTH_LIMIT = 400;

const TAG = 'tag:yaml.org,2002:';
const STR = `${TAG}str`;
const INT = `${TAG}int`;
const FLOAT = `${TAG}float`;
const BOOL = `${TAG}bool`;
const NULL = `${TAG}null`;
const MERGE = `${TAG}merge`;
const SCALAR_TAGS = new Set([STR, INT, FLOAT, BOOL, NULL]);

// Implicit types of plain scalars, YAML 1.1, in the order they are tried.
const IMPLICIT = [
  [BOOL, /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/],
  [
    FLOAT,
    /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  ],
  [
    INT,
    /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/,
  ],
  [MERGE, /^(?:<<)$/],
  [NULL, /^(?:~|null|Null|NULL|)$/],
  [
    `${TAG}timestamp`,
    /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
  ],
  [`${TAG}value`, /^(?:=)$/],
];

const BOOL_VALUES = { yes: true, no: false, true: true, false: false, on: true, off: false };

/** Escape one JSON-pointer reference token (RFC 6901). */
export function escapePointerToken(token) {
  return String(token).replaceAll('~', '~0').replaceAll('/', '~1');
}

export function joinPointer(pointer, token) {
  return `${pointer}/${escapePointerToken(token)}`;
}

function parentPointer(pointer) {
  return pointer.slice(0, pointer.lastIndexOf('/'));
}

// JavaScript objects list integer-like keys first; where a mapping has such keys (block sizes
// written `-1: 16`, `0: 8`), the order they were written in is kept here for messages that
// name "the first" offending key.
export const KEY_ORDER = Symbol('qrecipe.keyOrder');

/** The keys of a mapping in the order they were written. */
export function writtenKeys(object) {
  return object[KEY_ORDER] || Object.keys(object);
}

/** Set a key on a plain object even when it is "__proto__". */
export function setKey(object, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

export function hasKey(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/** One YAML document as plain data plus the positions of its values and keys. */
export class YamlDocument {
  constructor(data, start = [1, 1]) {
    this.data = data;
    /** @type {Map<string, [number, number]>} */
    this.positions = new Map();
    /** @type {Map<string, [number, number]>} */
    this.keyPositions = new Map();
    this.start = start;
  }

  /** Line and column (1-based) of the value at `pointer` (or of its key), else of its nearest enclosing value. */
  position(pointer, { key = false } = {}) {
    if (key && this.keyPositions.has(pointer)) return this.keyPositions.get(pointer);
    let at = pointer;
    for (;;) {
      if (this.positions.has(at)) return this.positions.get(at);
      if (!at) return this.start;
      at = parentPointer(at);
    }
  }
}

/** Maps string offsets to 1-based line and column, counting columns in code points. */
class Locator {
  constructor(text) {
    this.text = text;
    this.astral = /[\uD800-\uDBFF]/.test(text);
    this.counter = new LineCounter();
    let offset = 0;
    this.counter.addNewLine(0);
    for (;;) {
      const next = text.indexOf('\n', offset);
      if (next < 0) break;
      offset = next + 1;
      this.counter.addNewLine(offset);
    }
  }

  at(offset) {
    const { line, col } = this.counter.linePos(offset);
    if (!this.astral) return [line, col];
    // Columns count characters: a surrogate pair is one.
    const lineStart = offset - (col - 1);
    return [line, Array.from(this.text.slice(lineStart, offset)).length + 1];
  }
}

const FLOW_OR_SPACE = new Set([' ', '\t', '\n', '\r', '[', ']', '{', '}', ',']);

/** Where a node starts, its anchor and tag included (the content range starts after them). */
function nodeStart(node, text) {
  let start = node.range[0];
  if (isScalar(node) && node.type === 'PLAIN' && node.value === '' && !node.anchor && !node.tag) {
    return emptyScalarStart(start, text);
  }
  if (!(node.anchor || node.tag) || isAlias(node)) return start;
  for (let props = 0; props < 2; props++) {
    let end = start;
    while (end > 0 && ' \t\r\n'.includes(text[end - 1])) end--;
    let begin = end;
    while (begin > 0 && !FLOW_OR_SPACE.has(text[begin - 1])) begin--;
    if (begin < end && (text[begin] === '&' || text[begin] === '!')) start = begin;
    else break;
  }
  return start;
}

// An empty value sits right after the indicator before it ('-', ':' or '?'); an empty
// document at the next token.
function emptyScalarStart(offset, text) {
  let before = offset;
  while (before > 0 && (text[before - 1] === ' ' || text[before - 1] === '\t')) before--;
  const documentStart =
    text.slice(before - 3, before) === '---' && (before === 3 || text[before - 4] === '\n');
  if (before > 0 && '-:?'.includes(text[before - 1]) && !documentStart) return before;
  let after = offset;
  for (;;) {
    while (after < text.length && ' \t\r\n'.includes(text[after])) after++;
    if (text[after] !== '#') break;
    while (after < text.length && text[after] !== '\n') after++;
  }
  return after;
}

function resolveScalarTag(node) {
  const tag = node.tag;
  if (tag && tag !== '!') return tag;
  if (node.type !== 'PLAIN') return STR;
  const value = String(node.value);
  for (const [name, pattern] of IMPLICIT) {
    if (pattern.test(value)) return name;
  }
  return STR;
}

function constructInt(text) {
  let value = text.replaceAll('_', '');
  let sign = 1n;
  if (value[0] === '-') sign = -1n;
  if (value[0] === '+' || value[0] === '-') value = value.slice(1);
  if (value === '0') return 0n;
  if (value.startsWith('0b')) return sign * BigInt(`0b${value.slice(2)}`);
  if (value.startsWith('0x')) return sign * BigInt(`0x${value.slice(2)}`);
  if (value[0] === '0') return sign * BigInt(`0o${value.slice(1) || '0'}`);
  if (value.includes(':')) {
    let result = 0n;
    for (const part of value.split(':')) result = result * 60n + BigInt(part);
    return sign * result;
  }
  return sign * BigInt(value);
}

function constructFloat(text) {
  let value = text.replaceAll('_', '').toLowerCase();
  let sign = 1;
  if (value[0] === '-') sign = -1;
  if (value[0] === '+' || value[0] === '-') value = value.slice(1);
  if (value === '.inf') return sign * Infinity;
  if (value === '.nan') return NaN;
  if (value.includes(':')) {
    let result = 0;
    for (const part of value.split(':')) result = result * 60 + Number(part);
    return sign * result;
  }
  return sign * Number(value);
}

function emptyScalarAt(offset) {
  const scalar = new Scalar('');
  scalar.type = 'PLAIN';
  scalar.source = '';
  scalar.range = [offset, offset, offset];
  return scalar;
}

function tagWord(tag) {
  return tag.slice(tag.lastIndexOf(':') + 1);
}

class Builder {
  constructor(text, file, locator, aliases) {
    this.text = text;
    this.file = file;
    this.locator = locator;
    this.aliases = aliases;
    this.visited = 0;
  }

  mark(node) {
    return this.locator.at(nodeStart(node, this.text));
  }

  fail(Cls, node, message, pointer, hint = null) {
    const [line, column] = this.mark(node);
    throw new Cls(new Diagnostic({ message, file: this.file, line, column, pointer, code: Cls.code, hint }));
  }

  target(node) {
    let current = node;
    while (isAlias(current)) current = this.aliases.get(current);
    return current;
  }

  build(rawNode, doc, pointer = '', depth = 0) {
    const node = this.target(rawNode);
    this.visited++;
    if (this.visited > MAX_NODES) {
      this.fail(
        RecipeLimitError,
        node,
        `document expands to more than ${MAX_NODES} values (alias expansion limit)`,
        pointer,
        'YAML anchors and aliases that multiply each other are refused',
      );
    }
    if (depth > MAX_DEPTH) {
      this.fail(RecipeLimitError, node, `nesting deeper than ${MAX_DEPTH} levels`, pointer);
    }
    if (!doc.positions.has(pointer)) doc.positions.set(pointer, this.mark(node));
    if (isScalar(node)) return this.scalar(node, pointer);
    if (isSeq(node)) {
      if (node.tag && node.tag !== '!' && node.tag !== `${TAG}seq`) {
        this.fail(RecipeSyntaxError, node, `unsupported YAML tag ${pyRepr(node.tag)}`, pointer);
      }
      return node.items.map((item, index) => this.build(item, doc, joinPointer(pointer, index), depth + 1));
    }
    if (node.tag && node.tag !== '!' && node.tag !== `${TAG}map`) {
      this.fail(RecipeSyntaxError, node, `unsupported YAML tag ${pyRepr(node.tag)}`, pointer);
    }
    const result = {};
    const order = [];
    for (const pair of node.items) {
      const keyNode = this.target(pair.key) ?? this.emptyScalar(pair, node);
      const key = this.key(keyNode, pointer);
      const child = joinPointer(pointer, key);
      if (hasKey(result, key)) {
        const firstLine = doc.keyPositions.get(child)[0];
        this.fail(
          DuplicateKeyError,
          keyNode,
          `duplicate key ${pyRepr(key)} (first given on line ${firstLine})`,
          child,
          'YAML mappings must not repeat a key; the later value would silently win',
        );
      }
      doc.keyPositions.set(child, this.mark(keyNode));
      const valueNode = pair.value ?? this.emptyValue(pair, keyNode);
      setKey(result, key, this.build(valueNode, doc, child, depth + 1));
      order.push(key);
    }
    if (order.some((key) => /^(0|[1-9][0-9]*)$/.test(key))) {
      Object.defineProperty(result, KEY_ORDER, { value: order, enumerable: false });
    }
    return result;
  }

  // An omitted key or value is an empty plain scalar (null), placed where YAML places it.
  emptyScalar(pair, mapNode) {
    return emptyScalarAt(pair.value?.range ? pair.value.range[0] : mapNode.range[0]);
  }

  emptyValue(pair, keyNode) {
    let offset = keyNode.range[1];
    const colon = this.text.indexOf(':', offset);
    if (colon >= 0 && /^[ \t]*$/.test(this.text.slice(offset, colon))) offset = colon + 1;
    return emptyScalarAt(offset);
  }

  key(node, pointer) {
    if (!isScalar(node)) {
      this.fail(RecipeSyntaxError, node, 'mapping keys must be strings', pointer);
    }
    const tag = resolveScalarTag(node);
    if (tag === MERGE) {
      this.fail(
        RecipeSyntaxError,
        node,
        'YAML merge keys (<<) are not supported',
        pointer,
        'compose mappings with $import instead',
      );
    }
    if (tag === STR) return String(node.value);
    if (tag === INT) return constructInt(String(node.value)).toString();
    const value = tag !== NULL ? String(node.value) : 'null';
    this.fail(
      RecipeSyntaxError,
      node,
      `mapping keys must be strings, got ${pyRepr(value)} (${tagWord(tag)})`,
      pointer,
      'quote the key',
    );
    return '';
  }

  scalar(node, pointer) {
    const tag = resolveScalarTag(node);
    const source = node.type === 'PLAIN' && typeof node.source === 'string' ? node.source : String(node.value);
    if (!SCALAR_TAGS.has(tag)) {
      this.fail(
        RecipeSyntaxError,
        node,
        `unsupported YAML value of type ${pyRepr(tagWord(tag))}: ${pyRepr(source)}`,
        pointer,
        'recipes hold only strings, numbers, booleans and null; quote the value to make it a string',
      );
    }
    switch (tag) {
      case STR:
        return String(source);
      case NULL:
        return null;
      case BOOL: {
        const value = BOOL_VALUES[String(source).toLowerCase()];
        if (value === undefined) this.badValue(node, pointer, 'bool', source);
        return value;
      }
      case INT: {
        let value;
        try {
          value = constructInt(String(source));
        } catch {
          this.badValue(node, pointer, 'int', source);
        }
        if (value > MAX_SAFE_INTEGER || value < -MAX_SAFE_INTEGER) {
          this.fail(
            RecipeSyntaxError,
            node,
            `integer ${source} is too large for JSON (limit ±${MAX_SAFE_INTEGER})`,
            pointer,
          );
        }
        return Number(value);
      }
      default: {
        const value = constructFloat(String(source));
        if (Number.isNaN(value) && !/nan$/i.test(String(source))) this.badValue(node, pointer, 'float', source);
        if (!Number.isFinite(value)) {
          this.fail(
            RecipeSyntaxError,
            node,
            `${pyRepr(source)} is not a finite number`,
            pointer,
            'JSON has no infinity or NaN',
          );
        }
        return value === 0 ? 0 : value;
      }
    }
  }

  badValue(node, pointer, type, source) {
    this.fail(RecipeSyntaxError, node, `invalid YAML: cannot read ${pyRepr(source)} as ${type}`, pointer);
  }
}

/**
 * Refuse nesting deeper than the limit before building, in texts with enough brackets to be
 * that deep: the collection that goes one level too deep is reported, without a pointer.
 */
function checkFlowDepth(documents, text, locator, file, cut) {
  let brackets = 0;
  for (let i = 0; i < text.length && brackets <= MAX_DEPTH; i++) {
    if (text[i] === '[' || text[i] === '{') brackets++;
  }
  if (brackets <= MAX_DEPTH) return;
  const firstError = Math.min(
    ...documents.flatMap((doc) => doc.errors.map((e) => e.pos[0]).filter((at) => cut < 0 || at < cut - 1)),
    Infinity,
  );
  const stack = documents.map((doc) => [doc.contents, 1]).reverse();
  while (stack.length) {
    const [node, depth] = stack.pop();
    if (!node || !(isMap(node) || isSeq(node))) continue;
    if (depth > MAX_DEPTH) {
      const start = nodeStart(node, text);
      if (start > firstError) return; // the syntax error comes first
      const [line, column] = locator.at(start);
      throw new RecipeLimitError(
        new Diagnostic({ message: `nesting deeper than ${MAX_DEPTH} levels`, file, line, column, code: 'limit' }),
      );
    }
    const children = isMap(node) ? node.items.flatMap((pair) => [pair.key, pair.value]) : node.items;
    for (let i = children.length - 1; i >= 0; i--) stack.push([children[i], depth + 1]);
  }
}

/** Anchors are bound in document order; an alias names the latest anchor before it. */
function bindAliases(doc, text, locator, file) {
  const aliases = new Map();
  const anchors = new Map();
  const walk = (node, depth) => {
    if (!node) return;
    if (depth > PARSE_DEPTH_LIMIT) {
      throw new RecipeLimitError(`nesting deeper than ${MAX_DEPTH} levels`, { file });
    }
    if (depth > MAX_DEPTH + 2) return; // the builder stops before reaching this
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (!target) {
        // An alias without a name is a scanning error, reported just after the '*'.
        const unnamed = !node.source;
        const offset = node.range[0] + (unnamed ? 1 : 0);
        const [line, column] = locator.at(offset);
        const message = unnamed
          ? 'invalid YAML: did not find expected alphabetic or numeric character (while scanning an alias)'
          : 'invalid YAML: found undefined alias';
        throw Object.assign(
          new RecipeSyntaxError(new Diagnostic({ message, file, line, column, code: 'syntax' })),
          { offset: node.range[0] },
        );
      }
      aliases.set(node, target);
      return;
    }
    if (node.anchor) {
      if (anchors.has(node.anchor)) {
        const [line, column] = locator.at(nodeStart(node, text));
        throw Object.assign(
          new RecipeSyntaxError(
            new Diagnostic({
              message: 'invalid YAML: second occurrence (found duplicate anchor; first occurrence)',
              file,
              line,
              column,
              code: 'syntax',
            }),
          ),
          { offset: nodeStart(node, text) },
        );
      }
      anchors.set(node.anchor, node);
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        walk(pair.key, depth + 1);
        walk(pair.value, depth + 1);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) walk(item, depth + 1);
    }
  };
  walk(doc.contents, 0);
  return aliases;
}

// Characters YAML readers refuse outright.
const NON_PRINTABLE = /[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Index of the first byte that does not start a valid UTF-8 sequence, or -1. */
function invalidUtf8At(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let need;
    let min;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else return i;
    if (i + need > bytes.length - 1) return i;
    let code = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/**
 * Where a text could first nest deeper than the parser can follow, or -1. An upper bound on
 * the nesting at each point: indentation, block indicators on the line, and open brackets.
 */
function tooDeepAt(text) {
  let flow = 0;
  let quote = null;
  let lineStart = true;
  let indent = 0;
  let indicators = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      lineStart = true;
      indent = 0;
      indicators = 0;
      continue;
    }
    if (lineStart) {
      if (ch === ' ') {
        indent++;
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"') i++;
      continue;
    }
    const next = text[i + 1];
    const separated = next === undefined || next === ' ' || next === '\n' || next === '\t' || next === '\r';
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '[' || ch === '{') flow++;
    else if ((ch === ']' || ch === '}') && flow > 0) flow--;
    else if ((ch === '-' || ch === '?' || ch === ':') && separated) indicators++;
    else if (ch === '#' && (i === 0 || ' \t'.includes(text[i - 1]))) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    }
    if (indent + indicators + flow > PARSE_DEPTH_LIMIT) return i;
  }
  return -1;
}

/** Decode file bytes (UTF-8, optional BOM) with the size limit; strings pass through with theirs. */
export function decodeText(raw, file) {
  if (typeof raw === 'string') {
    if (raw.length > MAX_FILE_BYTES) {
      throw new RecipeLimitError(
        `text is ${raw.length} characters, more than the ${MAX_FILE_BYTES} limit`,
        { file },
      );
    }
    return raw;
  }
  if (raw.length > MAX_FILE_BYTES) {
    throw new RecipeLimitError(
      `file is ${raw.length} bytes, more than the ${MAX_FILE_BYTES}-byte limit`,
      { file },
    );
  }
  const bad = invalidUtf8At(raw);
  if (bad >= 0) {
    let lineStart = 0;
    let line = 1;
    for (let i = 0; i < bad; i++) {
      if (raw[i] === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    throw new RecipeSyntaxError(
      new Diagnostic({
        message: `file is not valid UTF-8 (byte ${bad})`,
        file,
        line,
        column: bad - lineStart + 1,
        code: 'syntax',
      }),
    );
  }
  let text = new TextDecoder('utf-8').decode(raw);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

function isEmptyImplicitDocument(doc) {
  const contents = doc.contents;
  if (doc.directives?.docStart) return false;
  return !contents || (isScalar(contents) && contents.value === '' && !contents.tag && !contents.anchor);
}

// The usual YAML mistakes, worded and placed as libyaml (the reference loader) reports them.
const SYNTAX_MESSAGES = [
  [/^Flow sequence .*end with a \]/, "did not find expected ',' or ']' (while parsing a flow sequence)"],
  [/^Flow map .*end with a \}/, "did not find expected ',' or '}' (while parsing a flow mapping)"],
  [/^Missing closing .?quote/, 'found unexpected end of stream (while scanning a quoted scalar)'],
  [/^Tabs are not allowed as indentation/, 'found character that cannot start any token (while scanning for the next token)'],
  [/^All mapping items must start at the same column/, 'did not find expected key (while parsing a block mapping)', 'token'],
  [/^All sequence items must start at the same column/, "did not find expected '-' indicator (while parsing a block collection)", 'token'],
  [/^Nested mappings are not allowed in compact mappings/, 'mapping values are not allowed in this context', 'colon'],
  [/^Implicit keys need to be on a single line/, 'mapping values are not allowed in this context', 'colon'],
  [/^A block sequence may not be used as an implicit map key/, 'did not find expected key (while parsing a block mapping)', 'token'],
  [/^Sequence item without - indicator/, "did not find expected '-' indicator (while parsing a block collection)", 'token'],
  [/^Unexpected scalar at node end/, 'did not find expected <document start>'],
  [/^Implicit map keys need to be followed by map values/, "could not find expected ':' (while scanning a simple key)", 'next-line'],
];

/** The offset of the next token: past spaces, line breaks and comments. */
function nextToken(text, offset) {
  let at = offset;
  for (;;) {
    while (at < text.length && ' \t\r\n'.includes(text[at])) at++;
    if (text[at] !== '#') return at;
    while (at < text.length && text[at] !== '\n') at++;
  }
}

/** [message, offset] of a parse error. */
function syntaxError(error, text) {
  const first = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  let offset = Math.min(error.pos[0], text.length);
  for (const [pattern, message, placement] of SYNTAX_MESSAGES) {
    if (!pattern.test(first)) continue;
    if (placement === 'token') {
      offset = nextToken(text, offset);
    } else if (placement === 'next-line') {
      const end = text.indexOf('\n', offset);
      offset = end < 0 ? text.length : nextToken(text, end);
    } else if (placement === 'colon') {
      const colon = /:(?=[ \t\r\n]|$)/g;
      colon.lastIndex = offset;
      const found = colon.exec(text);
      if (found) offset = found.index;
    }
    return [`invalid YAML: ${message}`, offset];
  }
  return [`invalid YAML: ${first}`, offset];
}

/**
 * Parse every document of a YAML (or JSON) text, safely.
 * @param {string|Uint8Array} raw
 * @param {string} file the name shown in messages
 * @returns {YamlDocument[]}
 */
export function parseYaml(raw, file) {
  const text = decodeText(raw, file);
  const printable = NON_PRINTABLE.exec(text);
  if (printable) {
    const code = printable[0].codePointAt(0);
    // Lines and columns count characters (code points), as in the Python loader.
    const characters = Array.from(text.slice(0, printable.index));
    const lastNewline = characters.lastIndexOf('\n');
    throw new RecipeSyntaxError(
      new Diagnostic({
        message: `invalid YAML: control characters are not allowed (U+${code.toString(16).toUpperCase().padStart(4, '0')})`,
        file,
        line: characters.filter((c) => c === '\n').length + 1,
        column: characters.length - (lastNewline + 1) + 1,
        code: 'syntax',
        hint: 'control characters must be escaped inside a double-quoted string',
      }),
    );
  }
  const locator = new Locator(text);
  const cut = tooDeepAt(text);
  let parsed;
  try {
    parsed = parseAllDocuments(cut < 0 ? text : text.slice(0, cut), {
      schema: 'failsafe',
      uniqueKeys: false,
      strict: true,
      prettyErrors: false,
      keepSourceTokens: false,
      resolveKnownTags: false,
      // Values are built by this module (which counts alias expansions); never by toJS().
      maxAliasCount: 0,
    });
  } catch (error) {
    if (error instanceof RangeError) {
      throw new RecipeLimitError(`nesting deeper than ${MAX_DEPTH} levels`, { file });
    }
    throw error;
  }
  checkFlowDepth(Array.from(parsed), text, locator, file, cut);
  const documents = [];
  const builder = new Builder(text, file, locator, new Map());
  for (const doc of Array.from(parsed)) {
    // Errors at the cut are the cut's, not the text's.
    const errors = [...doc.errors]
      .filter((e) => cut < 0 || e.pos[0] < cut - 1)
      .sort((a, b) => a.pos[0] - b.pos[0]);
    let aliases = null;
    let aliasError = null;
    try {
      aliases = bindAliases(doc, text, locator, file);
    } catch (error) {
      if (!(error instanceof RecipeSyntaxError)) throw error;
      aliasError = error;
    }
    // Aliases are bound as the document is read, so an undefined one before a syntax error wins.
    if (aliasError && (!errors.length || aliasError.offset < errors[0].pos[0])) throw aliasError;
    if (errors.length) {
      const [message, offset] = syntaxError(errors[0], text);
      let [line, column] = locator.at(offset);
      if (offset >= text.length && text && !text.endsWith('\n') && message.includes('while parsing a flow')) {
        // The end of a stream without a final line break is on the line after it.
        [line, column] = [line + 1, 1];
      }
      throw new RecipeSyntaxError(new Diagnostic({ message, file, line, column, code: 'syntax' }));
    }
    if (isEmptyImplicitDocument(doc)) continue;
    const contents = doc.contents ?? emptyScalarAt(doc.range[0]);
    const start = locator.at(nodeStart(contents, text));
    if (documents.length === MAX_DOCUMENTS) {
      throw new RecipeSyntaxError(
        new Diagnostic({
          message: `more than ${MAX_DOCUMENTS} YAML documents`,
          file,
          line: start[0],
          column: start[1],
          code: 'syntax',
          hint: "a list snippet is two documents: its imports, then '---' and the list",
        }),
      );
    }
    builder.aliases = aliases;
    const result = new YamlDocument(null, start);
    try {
      result.data = builder.build(contents, result);
    } catch (error) {
      if (error instanceof RangeError) {
        throw new RecipeLimitError(`nesting deeper than ${MAX_DEPTH} levels`, { file });
      }
      throw error;
    }
    documents.push(result);
  }
  if (cut >= 0) throw new RecipeLimitError(`nesting deeper than ${MAX_DEPTH} levels`, { file });
  return documents;
}

