// Safe YAML loading that remembers where every value came from.
//
// A file is decoded (UTF-8, at most MAX_FILE_BYTES), its characters are checked, it is read by
// yamlparser.js (the YAML recipes are written in, the same in Python) and the nodes are built
// into plain JSON data here, exactly as the Python package does (src/qrecipe/language/yamlio.py),
// so that we can:
// * record where every value and key starts, found by JSON pointer, for messages (the Python
//   package keeps a dict by pointer; here a table of integers, see YamlDocument, since Node's
//   heap, not the file, is what bounds how large a file the command line reads in 100 MB);
// * reject what a recipe must not contain: duplicate keys, non-string keys (integer keys are
//   allowed and become strings, since block sizes are written `-1: 16`), merge keys, dates,
//   binary, custom tags, `.inf`/`.nan`;
// * bound the work a hostile file can cause: file size, nesting depth, and the number of values
//   built, which is what stops alias-expansion ("billion laughs") bombs.

import { hasKey, isObject, keepKeyOrder, setKey, writtenKeys } from './data.js';
import { DuplicateKeyError, RecipeLimitError, RecipeSyntaxError } from './errors.js';
import { MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES, MAX_NODES } from './limits.js';
import { escapePointerToken, joinPointer, unescapePointerToken } from './pointers.js';
import { BOOL, FLOAT, INT, MERGE, NULL, STR, TAG, ScalarValueError, construct, implicitTag } from './scalars.js';
import { pyRepr } from './show.js';
import { Alias, Locator, Scalar, Sequence, parseDocuments } from './yamlparser.js';

export { escapePointerToken, joinPointer, MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES, MAX_NODES };
export { hasKey, setKey, KEY_ORDER, writtenKeys } from './data.js';

const SCALAR_TAGS = { '!!str': STR, '!!int': INT, '!!float': FLOAT, '!!bool': BOOL, '!!null': NULL };
const SEQ_TAG = '!!seq';
const MAP_TAG = '!!map';

// Characters a recipe may not contain: control characters other than tab and line feed, a
// carriage return not followed by a line feed, the Unicode line breaks YAML 1.1 counts and
// JSON does not (NEL, U+2028, U+2029), a byte order mark after the start, and non-characters.
const REFUSED = /[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\u{10000}-\u{10ffff}]|\r(?!\n)/u;
const LINE_BREAK_NAMES = {
  '\x85': 'U+0085 (next line)',
  '\u2028': 'U+2028 (line separator)',
  '\u2029': 'U+2029 (paragraph separator)',
};

// A container with more children than this has its children indexed on the first lookup.
const INDEXED_CHILDREN = 16;
const DECIMAL_INDEX = /^(0|[1-9][0-9]*)$/;

/**
 * One YAML (or JSON) document as plain data plus where its values and keys are. Where a value
 * is, is kept as a text offset and turned into a line and column only when asked: files are
 * read far more often than they have a problem to report.
 *
 * The offsets are kept in one table, in the order the values were built (a value before its
 * children, children in order): three integers per value, its start, the start of its key
 * (-1 when it is not in a mapping) and how many values it and its descendants are. A JSON
 * pointer is found by walking `data` alongside the table, so that no pointer string is made
 * for a value until a message needs it; `data` must not be changed once built.
 */
export class YamlDocument {
  constructor(data, start = [1, 1], locator = null) {
    this.data = data;
    this.start = start;
    this.locator = locator;
    /** @type {Int32Array} [start, key start, size] of each value */
    this.table = new Int32Array(48);
    this.count = 0;
    /** @type {Map<number, Map<string, number>>|null} children of large containers, by token */
    this.childIndexes = null;
  }

  /** Record a value about to be built (its key, if any, starts at `keyStart`): its index. */
  enter(valueStart, keyStart = -1) {
    const index = this.count;
    if (3 * index + 3 > this.table.length) {
      const grown = new Int32Array(this.table.length * 2);
      grown.set(this.table);
      this.table = grown;
    }
    this.table[3 * index] = valueStart;
    this.table[3 * index + 1] = keyStart;
    this.table[3 * index + 2] = 1;
    this.count += 1;
    return index;
  }

  /** The value `index` is built: its descendants are the values recorded since it. */
  leave(index) {
    this.table[3 * index + 2] = this.count - index;
  }

  /** Text offset of the key of the `ordinal`-th child of the value `index`. */
  childKeyOffset(index, ordinal) {
    let child = index + 1;
    for (let k = 0; k < ordinal; k++) child += this.table[3 * child + 2];
    return this.table[3 * child + 1];
  }

  /** Index of the child named by pointer token `token` of `value` (at `index`), or -1. */
  childIndex(index, value, token) {
    let names;
    if (Array.isArray(value)) {
      if (!DECIMAL_INDEX.test(token) || Number(token) >= value.length) return -1;
      names = null;
    } else if (isObject(value)) {
      names = writtenKeys(value);
    } else {
      return -1;
    }
    const length = names === null ? value.length : names.length;
    if (length > INDEXED_CHILDREN) {
      if (this.childIndexes === null) this.childIndexes = new Map();
      let children = this.childIndexes.get(index);
      if (children === undefined) {
        children = new Map();
        let child = index + 1;
        for (let k = 0; k < length; k++) {
          children.set(names === null ? String(k) : escapePointerToken(names[k]), child);
          child += this.table[3 * child + 2];
        }
        this.childIndexes.set(index, children);
      }
      return children.get(token) ?? -1;
    }
    let child = index + 1;
    for (let k = 0; k < length; k++) {
      if ((names === null ? String(k) : escapePointerToken(names[k])) === token) return child;
      child += this.table[3 * child + 2];
    }
    return -1;
  }

  /** Index of the value at `pointer` exactly, or -1. */
  indexOf(pointer) {
    if (this.count === 0) return -1;
    if (pointer === '') return 0;
    if (pointer[0] !== '/') return -1;
    let index = 0;
    let value = this.data;
    let from = 1;
    for (;;) {
      const slash = pointer.indexOf('/', from);
      const token = slash < 0 ? pointer.slice(from) : pointer.slice(from, slash);
      index = this.childIndex(index, value, token);
      if (index < 0 || slash < 0) return index;
      value = Array.isArray(value) ? value[Number(token)] : value[unescapePointerToken(token)];
      from = slash + 1;
    }
  }

  /** [pointer, index] of every value, in the order they were built. */
  *entries() {
    if (this.count === 0) return;
    const table = this.table;
    function* walk(value, pointer, index) {
      yield [pointer, index];
      let child = index + 1;
      if (Array.isArray(value)) {
        for (let k = 0; k < value.length; k++) {
          yield* walk(value[k], joinPointer(pointer, k), child);
          child += table[3 * child + 2];
        }
      } else if (isObject(value)) {
        for (const key of writtenKeys(value)) {
          yield* walk(value[key], joinPointer(pointer, key), child);
          child += table[3 * child + 2];
        }
      }
    }
    yield* walk(this.data, '', 0);
  }

  /** Line and column of every value, by JSON pointer. */
  get positions() {
    const positions = new Map();
    for (const [pointer, index] of this.entries()) {
      positions.set(pointer, this.locator.at(this.table[3 * index]));
    }
    return positions;
  }

  /** Line and column of every key, by the JSON pointer of its value. */
  get keyPositions() {
    const positions = new Map();
    for (const [pointer, index] of this.entries()) {
      const keyStart = this.table[3 * index + 1];
      if (keyStart >= 0) positions.set(pointer, this.locator.at(keyStart));
    }
    return positions;
  }

  /** Line and column (1-based) of the value at `pointer` (or of its key), else of its nearest enclosing value. */
  position(pointer, { key = false } = {}) {
    if (key) {
      const index = this.indexOf(pointer);
      if (index >= 0 && this.table[3 * index + 1] >= 0) return this.locator.at(this.table[3 * index + 1]);
    }
    let at = pointer;
    for (;;) {
      const index = this.indexOf(at);
      if (index >= 0) return this.locator.at(this.table[3 * index]);
      if (!at) return this.start;
      at = at.slice(0, at.lastIndexOf('/'));
    }
  }
}

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

/** The text of a file (UTF-8, an optional byte order mark), within the size limit. */
export function decodeText(raw, file) {
  let text;
  if (typeof raw === 'string') {
    if (raw.length > MAX_FILE_BYTES) {
      throw new RecipeLimitError(`text is ${raw.length} characters, more than the ${MAX_FILE_BYTES} limit`, {
        file,
      });
    }
    text = raw;
  } else {
    if (raw.length > MAX_FILE_BYTES) {
      throw new RecipeLimitError(`file is ${raw.length} bytes, more than the ${MAX_FILE_BYTES}-byte limit`, {
        file,
      });
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
      throw new RecipeSyntaxError(`file is not valid UTF-8 (byte ${bad})`, { file, line, column: bad - lineStart + 1 });
    }
    text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(raw);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Refuse characters recipes may not hold; the text with CRLF line ends read as LF. */
export function checkCharacters(text, file) {
  const refused = REFUSED.exec(text);
  if (refused !== null) {
    const before = text.slice(0, refused.index);
    const lineStart = before.lastIndexOf('\n') + 1;
    const line = before.split('\n').length;
    const column = Array.from(before.slice(lineStart)).length + 1;
    const character = refused[0];
    let message;
    let hint;
    if (character === '\r') {
      message = 'a carriage return must be followed by a line feed';
      hint = 'save the file with LF (or CRLF) line ends';
    } else if (hasKey(LINE_BREAK_NAMES, character)) {
      message = `${LINE_BREAK_NAMES[character]} is not allowed: YAML 1.1 reads it as a line break, JSON and YAML 1.2 do not`;
      hint = 'use an ordinary line break, or write it as an escape inside a double-quoted string (\\N, \\L, \\P)';
    } else if (character === '\ufeff') {
      message = 'a byte order mark (U+FEFF) is only allowed at the start of a file';
      hint = null;
    } else {
      const code = character.codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
      message = `control characters are not allowed (U+${code})`;
      hint = 'control characters must be escaped inside a double-quoted string';
    }
    throw new RecipeSyntaxError(`invalid YAML: ${message}`, { file, line, column, hint });
  }
  return text.includes('\r') ? text.replaceAll('\r\n', '\n') : text;
}

/** The full name of a tag as written (`!!set` is `tag:yaml.org,2002:set`). */
function tagName(tag) {
  if (tag.startsWith('!!')) return TAG + tag.slice(2);
  if (tag.startsWith('!<') && tag.endsWith('>')) return tag.slice(2, -1);
  return tag;
}

function lastPart(tag) {
  return tag.slice(tag.lastIndexOf(':') + 1);
}

/**
 * Plain data from nodes, with positions, checking keys, tags, values and limits. The pointer of
 * the value being built is kept as a list of tokens and joined only for a message.
 */
class Builder {
  constructor(file, locator) {
    this.file = file;
    this.locator = locator;
    this.visited = 0;
    this.path = [];
  }

  get pointer() {
    let pointer = '';
    for (const token of this.path) pointer = joinPointer(pointer, token);
    return pointer;
  }

  fail(Error, node, message, hint = null) {
    const [line, column] = this.locator.at(node.start);
    return new Error(message, { file: this.file, line, column, pointer: this.pointer, hint });
  }

  /**
   * The data of `rawNode`. Nodes are read once unless an alias can reach them again, so the
   * children of one outside every anchored node are let go as soon as they are built: the
   * node tree shrinks while the data grows.
   */
  build(rawNode, doc, keyStart = -1, depth = 0, shared = false) {
    let node = rawNode;
    while (node instanceof Alias) node = node.target;
    const reused = shared || rawNode !== node || node.anchor !== null;
    this.visited += 1;
    if (this.visited > MAX_NODES) {
      throw this.fail(
        RecipeLimitError,
        node,
        `document expands to more than ${MAX_NODES} values (alias expansion limit)`,
        'YAML anchors and aliases that multiply each other are refused',
      );
    }
    if (depth > MAX_DEPTH) throw this.fail(RecipeLimitError, node, `nesting deeper than ${MAX_DEPTH} levels`);
    const index = doc.enter(node.start, keyStart);
    let value;
    if (node instanceof Scalar) {
      value = this.scalar(node);
    } else if (node instanceof Sequence) {
      this.checkCollectionTag(node, SEQ_TAG);
      const items = node.items;
      value = new Array(items.length);
      for (let position = 0; position < items.length; position++) {
        this.path.push(position);
        value[position] = this.build(items[position], doc, -1, depth + 1, reused);
        if (!reused) items[position] = null;
        this.path.pop();
      }
    } else {
      value = this.mapping(node, doc, index, depth, reused);
    }
    doc.leave(index);
    return value;
  }

  mapping(node, doc, index, depth, reused) {
    this.checkCollectionTag(node, MAP_TAG);
    const result = {};
    const order = [];
    for (let position = 0; position < node.keys.length; position++) {
      const keyNode = node.keys[position];
      const key = this.key(keyNode);
      this.path.push(key);
      if (hasKey(result, key)) {
        const firstLine = this.locator.at(doc.childKeyOffset(index, order.indexOf(key)))[0];
        throw this.fail(
          DuplicateKeyError,
          keyNode,
          `duplicate key ${pyRepr(key)} (first given on line ${firstLine})`,
          'YAML mappings must not repeat a key; the later value would silently win',
        );
      }
      setKey(result, key, this.build(node.values[position], doc, keyNode.start, depth + 1, reused));
      if (!reused) {
        node.keys[position] = null;
        node.values[position] = null;
      }
      this.path.pop();
      order.push(key);
    }
    return keepKeyOrder(result, order);
  }

  checkCollectionTag(node, allowed) {
    if (node.tag !== null && node.tag !== allowed) {
      throw this.fail(RecipeSyntaxError, node, `unsupported YAML tag ${pyRepr(tagName(node.tag))}`);
    }
  }

  key(node) {
    if (node.style) return node.value;
    const tag = implicitTag(node.value);
    if (tag === MERGE) {
      throw this.fail(
        RecipeSyntaxError,
        node,
        'YAML merge keys (<<) are not supported',
        'compose mappings with $import instead',
      );
    }
    if (tag === STR) return node.value;
    // Integer keys name axes in block_sizes / bias; JSON spells them as strings.
    if (tag === INT) return String(this.construct(node, INT));
    const value = tag !== NULL ? node.value : 'null';
    throw this.fail(
      RecipeSyntaxError,
      node,
      `mapping keys must be strings, got ${pyRepr(value)} (${lastPart(tag)})`,
      'quote the key',
    );
  }

  scalar(node) {
    let tag;
    if (node.tag === null) {
      tag = node.style ? STR : implicitTag(node.value);
    } else if (hasKey(SCALAR_TAGS, node.tag)) {
      tag = SCALAR_TAGS[node.tag];
      if (tag !== STR && implicitTag(node.value) !== tag) {
        throw this.fail(
          RecipeSyntaxError,
          node,
          `${pyRepr(node.value)} is not a value of type ${node.tag}`,
            'a tag may only confirm what the value already is; drop the tag',
        );
      }
    } else {
      tag = tagName(node.tag);
    }
    if (![STR, INT, FLOAT, BOOL, NULL].includes(tag)) {
      throw this.fail(
        RecipeSyntaxError,
        node,
        `unsupported YAML value of type ${pyRepr(lastPart(tag))}: ${pyRepr(node.value)}`,
        'recipes hold only strings, numbers, booleans and null; quote the value to make it a string',
      );
    }
    return this.construct(node, tag);
  }

  construct(node, tag) {
    try {
      return construct(tag, node.value);
    } catch (error) {
      if (!(error instanceof ScalarValueError)) throw error;
      throw this.fail(
        RecipeSyntaxError,
        node,
        `invalid YAML: ${error.message}`,
        tag === INT ? 'quote the value to make it a string' : 'JSON has no such number',
      );
    }
  }
}

/**
 * Parse every document of a YAML text, safely.
 * @param {string|Uint8Array} raw
 * @param {string} file the name shown in messages
 * @returns {YamlDocument[]}
 */
export function parseYaml(raw, file) {
  const text = checkCharacters(decodeText(raw, file), file);
  const locator = new Locator(text);
  const parsed = parseDocuments(text, file, locator);
  const builder = new Builder(file, locator);
  return parsed.map((document) => {
    const doc = new YamlDocument(null, locator.at(document.start), locator);
    doc.data = builder.build(document.root, doc);
    document.root = null;
    return doc;
  });
}
