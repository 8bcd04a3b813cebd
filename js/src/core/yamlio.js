// Safe YAML loading that remembers where every value came from.
//
// A file is decoded (UTF-8, at most MAX_FILE_BYTES), its characters are checked, it is read by
// yamlparser.js (the YAML recipes are written in, the same in Python) and the nodes are built
// into plain JSON data here, exactly as the Python package does (src/qrecipe/language/yamlio.py),
// so that we can:
// * record the line and column of every value and key, keyed by JSON pointer, for messages;
// * reject what a recipe must not contain: duplicate keys, non-string keys (integer keys are
//   allowed and become strings, since block sizes are written `-1: 16`), merge keys, dates,
//   binary, custom tags, `.inf`/`.nan`;
// * bound the work a hostile file can cause: file size, nesting depth, and the number of values
//   built, which is what stops alias-expansion ("billion laughs") bombs.

import { hasKey, keepKeyOrder, setKey } from './data.js';
import { DuplicateKeyError, RecipeLimitError, RecipeSyntaxError } from './errors.js';
import { MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES, MAX_NODES } from './limits.js';
import { escapePointerToken, joinPointer } from './pointers.js';
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

/**
 * One YAML (or JSON) document as plain data plus where its values and keys are. Where a value
 * is, is kept as a text offset and turned into a line and column only when asked: files are
 * read far more often than they have a problem to report.
 */
export class YamlDocument {
  constructor(data, start = [1, 1], locator = null) {
    this.data = data;
    /** @type {Map<string, number>} */
    this.offsets = new Map();
    /** @type {Map<string, number>} */
    this.keyOffsets = new Map();
    this.start = start;
    this.locator = locator;
  }

  /** Line and column of every value, by JSON pointer. */
  get positions() {
    return new Map([...this.offsets].map(([pointer, offset]) => [pointer, this.locator.at(offset)]));
  }

  /** Line and column of every key, by the JSON pointer of its value. */
  get keyPositions() {
    return new Map([...this.keyOffsets].map(([pointer, offset]) => [pointer, this.locator.at(offset)]));
  }

  /** Line and column (1-based) of the value at `pointer` (or of its key), else of its nearest enclosing value. */
  position(pointer, { key = false } = {}) {
    if (key && this.keyOffsets.has(pointer)) return this.locator.at(this.keyOffsets.get(pointer));
    let at = pointer;
    for (;;) {
      if (this.offsets.has(at)) return this.locator.at(this.offsets.get(at));
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

/** Plain data from nodes, with positions, checking keys, tags, values and limits. */
class Builder {
  constructor(file, locator) {
    this.file = file;
    this.locator = locator;
    this.visited = 0;
  }

  fail(Error, node, message, pointer, hint = null) {
    const [line, column] = this.locator.at(node.start);
    return new Error(message, { file: this.file, line, column, pointer, hint });
  }

  build(rawNode, doc, pointer = '', depth = 0) {
    let node = rawNode;
    while (node instanceof Alias) node = node.target;
    this.visited += 1;
    if (this.visited > MAX_NODES) {
      throw this.fail(
        RecipeLimitError,
        node,
        `document expands to more than ${MAX_NODES} values (alias expansion limit)`,
        pointer,
        'YAML anchors and aliases that multiply each other are refused',
      );
    }
    if (depth > MAX_DEPTH) throw this.fail(RecipeLimitError, node, `nesting deeper than ${MAX_DEPTH} levels`, pointer);
    if (!doc.offsets.has(pointer)) doc.offsets.set(pointer, node.start);
    if (node instanceof Scalar) return this.scalar(node, pointer);
    if (node instanceof Sequence) {
      this.checkCollectionTag(node, SEQ_TAG, pointer);
      return node.items.map((item, index) => this.build(item, doc, joinPointer(pointer, index), depth + 1));
    }
    this.checkCollectionTag(node, MAP_TAG, pointer);
    const result = {};
    const order = [];
    for (let index = 0; index < node.keys.length; index++) {
      const keyNode = node.keys[index];
      const key = this.key(keyNode, pointer);
      const child = joinPointer(pointer, key);
      if (hasKey(result, key)) {
        const firstLine = this.locator.at(doc.keyOffsets.get(child))[0];
        throw this.fail(
          DuplicateKeyError,
          keyNode,
          `duplicate key ${pyRepr(key)} (first given on line ${firstLine})`,
          child,
          'YAML mappings must not repeat a key; the later value would silently win',
        );
      }
      doc.keyOffsets.set(child, keyNode.start);
      setKey(result, key, this.build(node.values[index], doc, child, depth + 1));
      order.push(key);
    }
    return keepKeyOrder(result, order);
  }

  checkCollectionTag(node, allowed, pointer) {
    if (node.tag !== null && node.tag !== allowed) {
      throw this.fail(RecipeSyntaxError, node, `unsupported YAML tag ${pyRepr(tagName(node.tag))}`, pointer);
    }
  }

  key(node, pointer) {
    if (node.style) return node.value;
    const tag = implicitTag(node.value);
    if (tag === MERGE) {
      throw this.fail(
        RecipeSyntaxError,
        node,
        'YAML merge keys (<<) are not supported',
        pointer,
        'compose mappings with $import instead',
      );
    }
    if (tag === STR) return node.value;
    // Integer keys name axes in block_sizes / bias; JSON spells them as strings.
    if (tag === INT) return String(this.construct(node, INT, pointer));
    const value = tag !== NULL ? node.value : 'null';
    throw this.fail(
      RecipeSyntaxError,
      node,
      `mapping keys must be strings, got ${pyRepr(value)} (${lastPart(tag)})`,
      pointer,
      'quote the key',
    );
  }

  scalar(node, pointer) {
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
          pointer,
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
        pointer,
        'recipes hold only strings, numbers, booleans and null; quote the value to make it a string',
      );
    }
    return this.construct(node, tag, pointer);
  }

  construct(node, tag, pointer) {
    try {
      return construct(tag, node.value);
    } catch (error) {
      if (!(error instanceof ScalarValueError)) throw error;
      throw this.fail(
        RecipeSyntaxError,
        node,
        `invalid YAML: ${error.message}`,
        pointer,
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
    return doc;
  });
}
