// Strict JSON reading for flat recipes, with the position of every value.
//
// Flat recipes are JSON (RFC 8259) and nothing else: no YAML, no NaN, no duplicate keys, no
// lone surrogates, numbers within ±(2^53-1) when integral. This is the algorithm of the Python
// package (src/qrecipe/language/jsonio.py), so both report the same first problem at the same
// place.

import { keepKeyOrder, setKey, hasKey } from './data.js';
import { DuplicateKeyError, RecipeLimitError, RecipeSyntaxError } from './errors.js';
import { MAX_DEPTH, MAX_NODES, MAX_SAFE_INTEGER } from './limits.js';
import { joinPointer } from './pointers.js';
import { pyRepr } from './show.js';
import { YamlDocument, decodeText } from './yamlio.js';
import { Locator } from './yamlparser.js';

const WHITESPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const STRING_RUN = /[^"\\\x00-\x1f\ud800-\udfff]+/uy;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const HEX4 = /^[0-9A-Fa-f]{4}$/;
const LITERALS = [
  ['true', true],
  ['false', false],
  ['null', null],
];

function matchAt(pattern, text, offset) {
  pattern.lastIndex = offset;
  return pattern.exec(text);
}

class Reader {
  constructor(text, file) {
    this.text = text;
    this.n = text.length;
    this.file = file;
    this.locator = new Locator(text.replaceAll('\r', ' '));
    this.pos = 0;
    this.values = 0;
  }

  fail(offset, message, Error = RecipeSyntaxError) {
    const [line, column] = this.locator.at(Math.min(offset, this.n));
    const prefix = Error === RecipeSyntaxError ? 'invalid JSON: ' : '';
    return new Error(prefix + message, { file: this.file, line, column });
  }

  skipWhitespace() {
    this.pos += matchAt(WHITESPACE, this.text, this.pos)[0].length;
  }

  document() {
    this.skipWhitespace();
    const doc = new YamlDocument(null, this.locator.at(this.pos), this.locator);
    doc.data = this.value(doc, '', -1, 0);
    this.skipWhitespace();
    if (this.pos < this.n) throw this.fail(this.pos, 'extra data after the document');
    return doc;
  }

  value(doc, pointer, keyStart, depth) {
    const index = doc.enter(this.pos, keyStart);
    const value = this.content(doc, pointer, index, depth);
    doc.leave(index);
    return value;
  }

  content(doc, pointer, index, depth) {
    const start = this.pos;
    if (depth > MAX_DEPTH) throw this.fail(start, `nesting deeper than ${MAX_DEPTH} levels`, RecipeLimitError);
    this.values += 1;
    if (this.values > MAX_NODES) throw this.fail(start, `document has more than ${MAX_NODES} values`, RecipeLimitError);
    const here = start < this.n ? this.text[start] : '';
    if (here === '{') return this.object(doc, pointer, index, depth);
    if (here === '[') return this.array(doc, pointer, depth);
    if (here === '"') return this.string();
    for (const [word, literal] of LITERALS) {
      if (this.text.startsWith(word, start)) {
        this.pos = start + word.length;
        return literal;
      }
    }
    const match = matchAt(NUMBER, this.text, start);
    if (match === null) throw this.fail(start, here ? 'expecting a value' : 'unexpected end of data');
    this.pos = start + match[0].length;
    if (match[1] === undefined && match[2] === undefined) {
      const integer = BigInt(match[0]);
      if (integer > BigInt(MAX_SAFE_INTEGER) || integer < -BigInt(MAX_SAFE_INTEGER)) {
        throw this.fail(start, `integer ${match[0]} is too large (limit ±${MAX_SAFE_INTEGER})`);
      }
      return Number(integer);
    }
    const number = Number(match[0]);
    if (!Number.isFinite(number)) throw this.fail(start, `${match[0]} is not a finite number`);
    return number === 0 ? 0 : number; // -0 reads as 0, as in Python's output
  }

  object(doc, pointer, index, depth) {
    this.pos += 1;
    const result = {};
    const order = [];
    this.skipWhitespace();
    if (this.text.startsWith('}', this.pos)) {
      this.pos += 1;
      return result;
    }
    for (;;) {
      const keyStart = this.pos;
      if (!this.text.startsWith('"', keyStart)) {
        throw this.fail(keyStart, 'expecting a property name enclosed in double quotes');
      }
      const key = this.string();
      const child = joinPointer(pointer, key);
      if (hasKey(result, key)) {
        const [line, column] = this.locator.at(keyStart);
        const firstLine = this.locator.at(doc.childKeyOffset(index, order.indexOf(key)))[0];
        throw new DuplicateKeyError(`duplicate key ${pyRepr(key)} (first given on line ${firstLine})`, {
          file: this.file,
          line,
          column,
          pointer: child,
          hint: 'JSON objects must not repeat a key; the later value would silently win',
        });
      }
      this.skipWhitespace();
      if (!this.text.startsWith(':', this.pos)) throw this.fail(this.pos, "expecting ':' delimiter");
      this.pos += 1;
      this.skipWhitespace();
      setKey(result, key, this.value(doc, child, keyStart, depth + 1));
      order.push(key);
      this.skipWhitespace();
      if (this.text.startsWith(',', this.pos)) {
        this.pos += 1;
        this.skipWhitespace();
        continue;
      }
      if (this.text.startsWith('}', this.pos)) {
        this.pos += 1;
        return keepKeyOrder(result, order);
      }
      throw this.fail(this.pos, "expecting ',' delimiter");
    }
  }

  array(doc, pointer, depth) {
    this.pos += 1;
    const result = [];
    this.skipWhitespace();
    if (this.text.startsWith(']', this.pos)) {
      this.pos += 1;
      return result;
    }
    for (;;) {
      result.push(this.value(doc, joinPointer(pointer, result.length), -1, depth + 1));
      this.skipWhitespace();
      if (this.text.startsWith(',', this.pos)) {
        this.pos += 1;
        this.skipWhitespace();
        continue;
      }
      if (this.text.startsWith(']', this.pos)) {
        this.pos += 1;
        return result;
      }
      throw this.fail(this.pos, "expecting ',' delimiter");
    }
  }

  string() {
    const start = this.pos;
    this.pos += 1;
    const chunks = [];
    for (;;) {
      const match = matchAt(STRING_RUN, this.text, this.pos);
      if (match !== null) {
        chunks.push(match[0]);
        this.pos += match[0].length;
      }
      const here = this.pos < this.n ? this.text[this.pos] : '';
      if (here === '"') {
        this.pos += 1;
        return chunks.join('');
      }
      if (here === '\\') chunks.push(this.escape());
      else if (!here) throw this.fail(start, 'unterminated string');
      else {
        const code = here.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
        throw this.fail(this.pos, `invalid character U+${code} in a string`);
      }
    }
  }

  escape() {
    const start = this.pos;
    const code = start + 1 < this.n ? this.text[start + 1] : '';
    if (code && hasKey(ESCAPES, code)) {
      this.pos += 2;
      return ESCAPES[code];
    }
    if (code !== 'u' || !HEX4.test(this.text.slice(start + 2, start + 6))) throw this.fail(start, 'invalid escape');
    const unit = parseInt(this.text.slice(start + 2, start + 6), 16);
    this.pos = start + 6;
    if (unit >= 0xdc00 && unit <= 0xdfff) throw this.fail(start, 'a lone surrogate escape is not a character');
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const low = this.text.slice(this.pos, this.pos + 6);
      if (!(low.startsWith('\\u') && HEX4.test(low.slice(2)))) {
        throw this.fail(start, 'a lone surrogate escape is not a character');
      }
      const second = parseInt(low.slice(2), 16);
      if (!(second >= 0xdc00 && second <= 0xdfff)) throw this.fail(start, 'a lone surrogate escape is not a character');
      this.pos += 6;
      return String.fromCodePoint(0x10000 + ((unit - 0xd800) << 10) + (second - 0xdc00));
    }
    return String.fromCharCode(unit);
  }
}

/** Parse one JSON document with the positions of its values and keys. */
export function parseJson(raw, file) {
  return new Reader(decodeText(raw, file), file).document();
}
