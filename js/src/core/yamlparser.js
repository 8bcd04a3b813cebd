// The YAML recipes are written in: a strict subset of YAML 1.1, read alike in every language.
//
// `parseDocuments` turns text into nodes (scalars with their style and tag, sequences,
// mappings, aliases), each with the offset it starts at. Everything it accepts reads exactly as
// PyYAML, and so ModelOpt, reads it; what PyYAML reads in a way other YAML readers do not (or
// refuses itself) is refused here with a message that says what to write instead. The rules
// are written down in docs/authoring.md ("The YAML recipes are written in"), and this is the
// algorithm of the Python package (src/qrecipe/language/yamlparser.py), function by function:
// a change here is a change there.
//
// Nesting depth and the number of values are counted while reading, for block and flow
// collections alike, so no text can exhaust the stack or the memory.

import { RecipeLimitError, RecipeSyntaxError } from './errors.js';
import { MAX_DEPTH, MAX_DOCUMENTS, MAX_KEY_LENGTH, MAX_NODES } from './limits.js';
import { joinPointer } from './pointers.js';
import { INT, ScalarValueError, construct, implicitTag } from './scalars.js';
import { pyRepr } from './show.js';

/**
 * A value as written: where it starts (a UTF-16 offset), its anchor and tag if any. A file
 * holds a node per value until it is built, and few values have an anchor, a tag or a quoted
 * style, so those are stored only when given (the prototype answers null, or '' for a style).
 */
export class Node {
  constructor(start, anchor = null, tag = null) {
    this.start = start;
    this.setProperties(anchor, tag);
  }

  setProperties(anchor, tag) {
    if (anchor !== null) this.anchor = anchor;
    if (tag !== null) this.tag = tag;
  }
}
Node.prototype.anchor = null;
Node.prototype.tag = null;

export class Scalar extends Node {
  /** `style`: '' plain, "'" or '"' quoted, '|' or '>' block. */
  constructor(start, value = '', style = '') {
    super(start);
    this.value = value;
    if (style) this.style = style;
  }
}
Scalar.prototype.style = '';

export class Sequence extends Node {
  constructor(start, anchor, tag) {
    super(start, anchor, tag);
    this.items = [];
  }

  /** The node, its list cut to its length: a list grown item by item keeps 17 slots or more. */
  finished() {
    this.items = this.items.slice();
    return this;
  }
}

export class Mapping extends Node {
  constructor(start, anchor, tag) {
    super(start, anchor, tag);
    this.keys = [];
    this.values = [];
  }

  /** The node, its lists cut to their length: a list grown item by item keeps 17 slots or more. */
  finished() {
    this.keys = this.keys.slice();
    this.values = this.values.slice();
    return this;
  }
}

export class Alias extends Node {
  constructor(start, target) {
    super(start);
    this.target = target;
  }
}

/** Line and column (1-based, columns counted in characters) of a text offset. */
export class Locator {
  constructor(text) {
    this.lineStarts = [0];
    for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) this.lineStarts.push(at + 1);
    // Offsets count UTF-16 units; where characters above U+FFFF occur, columns subtract the
    // second unit of each pair before the offset.
    this.lowSurrogates = null;
    if (/[\uD800-\uDBFF]/.test(text)) {
      this.lowSurrogates = new Int32Array(text.length + 1);
      for (let i = 0; i < text.length; i++) {
        const code = text.charCodeAt(i);
        this.lowSurrogates[i + 1] = this.lowSurrogates[i] + (code >= 0xdc00 && code <= 0xdfff ? 1 : 0);
      }
    }
  }

  lineIndex(offset) {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.lineStarts[middle] <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  lineStart(offset) {
    return this.lineStarts[this.lineIndex(offset)];
  }

  /** Characters between two offsets. */
  distance(from, to) {
    if (this.lowSurrogates === null) return to - from;
    return to - from - (this.lowSurrogates[to] - this.lowSurrogates[from]);
  }

  at(offset) {
    const index = this.lineIndex(offset);
    return [index + 1, this.distance(this.lineStarts[index], offset) + 1];
  }
}

const BLANK = ' \t\n';
// What is read past the end: NUL never occurs in a checked text.
const EOF = '\0';
const FLOW_INDICATORS = ',[]{}';
// A run of a plain scalar: up to a space, a line break, a tab, or ': '; inside brackets also
// up to a flow indicator or '?'.
const PLAIN_RUN_BLOCK = /(?:[^ \t\n:\0]|:(?=[^ \t\n\0]))+/y;
const PLAIN_RUN_FLOW = /(?:[^ \t\n:,[\]{}?\0]|:(?=[^ \t\n,[\]{}\0]))+/y;
const ANCHOR_NAME = /[0-9A-Za-z_-]+/y;
const TAG_BLOCK = /![^ \t\n\0]*/y;
const TAG_FLOW = /![^ \t\n,[\]{}\0]*/y;
const QUOTED_RUN = { "'": /[^'\n \t\0]+/y, '"': /[^"\\\n \t\0]+/y };
const SPACES = /[ \t]*/y;
const HEX = /^[0-9A-Fa-f]*$/;
const ESCAPES = {
  0: '\x00',
  a: '\x07',
  b: '\x08',
  t: '\x09',
  '\t': '\x09',
  n: '\x0a',
  v: '\x0b',
  f: '\x0c',
  r: '\x0d',
  e: '\x1b',
  ' ': '\x20',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\x85',
  _: '\xa0',
  L: '\u2028',
  P: '\u2029',
};
const ESCAPE_LENGTHS = { x: 2, u: 4, U: 8 };

const TAB_HINT =
  'indent and separate with spaces; tabs may appear only inside quoted strings, block scalars and comments';
const KEY_HINT = "a key is a plain or quoted string followed by ': ' on one line";

function matchAt(pattern, text, offset) {
  pattern.lastIndex = offset;
  return pattern.exec(text);
}

function isOneOf(character, set) {
  return character !== EOF && set.includes(character);
}

// The text is read with this many EOF characters after its end, so that looking a few
// characters ahead never needs a bounds check.
const PAD = 8;

class Parser {
  constructor(text, file, locator) {
    this.n = text.length;
    this.text = text + EOF.repeat(PAD);
    this.file = file;
    this.locator = locator;
    this.pos = 0;
    this.path = [];
    this.anchors = new Map();
    this.values = 0;
  }

  // ---------------------------------------------------------------- errors and places
  /** An error at `offset`; `atPath`: reported at the collection being read. */
  fail(offset, message, hint = null, { error = RecipeSyntaxError, atPath = false } = {}) {
    const [line, column] = this.locator.at(Math.min(offset, this.n));
    let pointer = '';
    if (atPath) for (const token of this.path) pointer = joinPointer(pointer, token);
    const prefix = error === RecipeSyntaxError ? 'invalid YAML: ' : '';
    return new error(prefix + message, { file: this.file, line, column, pointer, hint });
  }

  blankAt(offset) {
    return offset >= this.n || BLANK.includes(this.text[offset]);
  }

  column() {
    return this.locator.at(this.pos)[1] - 1;
  }

  /** At a document marker: '---' or '...' at the start of a line, then a blank. */
  atMarker() {
    const offset = this.pos;
    return (
      (this.text.startsWith('---', offset) || this.text.startsWith('...', offset)) &&
      this.blankAt(offset + 3) &&
      (offset === 0 || this.text[offset - 1] === '\n')
    );
  }

  count(node) {
    this.values += 1;
    if (this.values > MAX_NODES) {
      throw this.fail(node.start, `document has more than ${MAX_NODES} values`, 'split the file into snippets', {
        error: RecipeLimitError,
      });
    }
    if (node.anchor !== null) {
      // PyYAML refuses it; others take the later one
      if (this.anchors.has(node.anchor))
        throw this.fail(node.start, `the anchor ${pyRepr(node.anchor)} is defined twice`);
      this.anchors.set(node.anchor, node);
    }
    return node;
  }

  checkDepth(depth, offset) {
    if (depth > MAX_DEPTH) {
      throw this.fail(offset, `nesting deeper than ${MAX_DEPTH} levels`, null, { error: RecipeLimitError });
    }
  }

  // ---------------------------------------------------------------- white space
  skipSpaces() {
    while (this.pos < this.n && this.text[this.pos] === ' ') this.pos += 1;
    if (this.text[this.pos] === '\t') throw this.fail(this.pos, 'tab character outside a quoted string', TAB_HINT);
  }

  /** Skip a comment, which must start a line or follow a space. */
  skipComment() {
    if (this.text[this.pos] !== '#') return;
    if (this.pos > 0 && !' \n'.includes(this.text[this.pos - 1])) {
      throw this.fail(this.pos, "a comment needs a space before '#'");
    }
    const end = this.text.indexOf('\n', this.pos);
    this.pos = end < 0 ? this.n : end;
  }

  /** The rest of the line may hold only spaces and a comment. */
  endLine(what) {
    this.skipSpaces();
    this.skipComment();
    if (this.pos < this.n) {
      if (this.text[this.pos] !== '\n') throw this.fail(this.pos, `unexpected text after ${what}`);
      this.pos += 1;
    }
  }

  /** From a line start (or after a value), skip blank lines and comments. */
  skipBlankLines() {
    for (;;) {
      this.skipSpaces();
      this.skipComment();
      if (this.pos < this.n && this.text[this.pos] === '\n') {
        this.pos += 1;
        continue;
      }
      return;
    }
  }

  /** Spaces, line breaks and comments inside brackets. */
  skipFlowSpace() {
    for (;;) {
      this.skipSpaces();
      this.skipComment();
      if (this.pos < this.n && this.text[this.pos] === '\n') {
        this.pos += 1;
        if (this.atMarker()) throw this.fail(this.pos, 'a document marker inside brackets');
        continue;
      }
      return;
    }
  }

  // ---------------------------------------------------------------- documents
  documents() {
    const found = [];
    let directive = this.directives();
    let first = true;
    for (;;) {
      this.skipBlankLines();
      if (this.pos >= this.n) {
        if (directive) throw this.fail(this.pos, "a directive must be followed by '---'");
        return found;
      }
      if (this.atMarker() && this.text.startsWith('---', this.pos)) {
        this.pos += 3;
        this.endLine("'---'");
        this.skipBlankLines();
      } else if (this.atMarker()) {
        throw this.fail(this.pos, "'...' ends a document, but none was started");
      } else if (!first) {
        throw this.fail(this.pos, "a document after '...' must start with '---'");
      } else if (directive) {
        throw this.fail(this.pos, "a directive must be followed by '---'");
      }
      directive = false;
      first = false;
      if (this.pos >= this.n || this.atMarker()) {
        found.push({ root: this.count(new Scalar(this.pos)), start: this.pos });
      } else {
        if (this.text[this.pos] === '%' && this.column() === 0) {
          throw this.fail(this.pos, 'directives must come before the first document');
        }
        const root = this.blockValue(-1, 0, 'document');
        found.push({ root, start: root.start });
        if (this.pos < this.n && !this.atMarker()) throw this.fail(this.pos, this.strayContentMessage());
      }
      if (found.length > MAX_DOCUMENTS) {
        const [line, column] = this.locator.at(found[found.length - 1].start);
        throw new RecipeSyntaxError(`more than ${MAX_DOCUMENTS} YAML documents`, {
          file: this.file,
          line,
          column,
          hint: "a list snippet is two documents: its imports, then '---' and the list",
        });
      }
      if (this.atMarker() && this.text.startsWith('...', this.pos)) {
        this.pos += 3;
        this.endLine("'...'");
        this.skipBlankLines();
        if (this.pos < this.n && !(this.atMarker() && this.text.startsWith('---', this.pos))) {
          throw this.fail(this.pos, "a document after '...' must start with '---'");
        }
      }
    }
  }

  strayContentMessage() {
    if (this.text[this.pos] === '-' && this.blankAt(this.pos + 1)) {
      return 'this list item is not inside the list above it (check the indentation)';
    }
    return 'this line is not part of the document above it (check the indentation)';
  }

  /** Only `%YAML 1.1` is allowed, and only at the start of the file. */
  directives() {
    let seen = false;
    for (;;) {
      this.skipBlankLines();
      if (this.text[this.pos] !== '%') return seen;
      const end = this.text.indexOf('\n', this.pos);
      const line = this.text.slice(this.pos, end < 0 ? this.n : end);
      const words = line
        .split('#')[0]
        .split(' ')
        .filter((word) => word);
      if (words.length !== 2 || words[0] !== '%YAML' || words[1] !== '1.1' || seen) {
        throw this.fail(
          this.pos,
          words[0] !== '%YAML' || seen
            ? `unsupported directive ${pyRepr(line.split(' ')[0])}`
            : `unsupported YAML version ${pyRepr(words.slice(1).join(' '))}`,
          "recipes are YAML 1.1; the only directive allowed is '%YAML 1.1'",
        );
      }
      this.pos += '%YAML'.length;
      this.skipSpaces();
      this.pos += '1.1'.length;
      this.endLine('the directive');
      seen = true;
    }
  }

  // ---------------------------------------------------------------- block context
  /**
   * The value after '- ' or 'key:' (or a document's), on this line or the next ones.
   * `indent` is the column of the enclosing block collection (-1 for a document).
   * Returns with the position at the next line's content (or at the end).
   */
  blockValue(indent, depth, after) {
    const emptyAt = this.pos;
    let anchor = null;
    let tag = null;
    let propsStart = this.pos;
    let sameLine = false;
    let propsInline = false;
    let firstLine = true;
    for (;;) {
      this.skipSpaces();
      if (isOneOf(this.text[this.pos], '&!')) {
        if (anchor !== null || tag !== null) throw this.fail(this.pos, "a value's anchor and tag must be on one line");
        propsStart = this.pos;
        [anchor, tag] = this.properties(false);
        propsInline = true;
      }
      const here = this.text[this.pos];
      if (here !== '\n' && here !== '#' && here !== EOF) {
        sameLine = firstLine;
        break;
      }
      this.endLine('the value');
      this.skipBlankLines();
      firstLine = false;
      propsInline = false;
      if (this.pos >= this.n || this.atMarker() || !this.continuesValue(indent, after)) {
        if (anchor !== null || tag !== null) throw this.fail(propsStart, 'an anchor or a tag needs a value after it');
        return this.count(new Scalar(emptyAt));
      }
    }
    return this.blockNode(indent, depth, after, anchor, tag, propsStart, sameLine, propsInline);
  }

  /** Whether the line here holds the value begun on an earlier line. */
  continuesValue(indent, after) {
    const column = this.column();
    return column > indent || (after === 'key' && column === indent && this.atEntryIndicator());
  }

  atEntryIndicator() {
    return this.text[this.pos] === '-' && this.blankAt(this.pos + 1);
  }

  /**
   * A node starting at the current position (its properties already read). `sameLine`: on
   * the line of its '- ' or 'key:'; `propsInline`: its anchor or tag is on the line it starts on.
   */
  blockNode(indent, depth, after, anchor, tag, propsStart, sameLine, propsInline) {
    const hasProps = anchor !== null || tag !== null;
    const start = hasProps ? propsStart : this.pos;
    this.checkDepth(depth, start);
    const column = this.column();
    const here = this.text[this.pos];
    if (this.atEntryIndicator()) {
      if (sameLine && after === 'key') {
        throw this.fail(this.pos, 'a list cannot start on the line of its key', 'start the list on the next line');
      }
      if (propsInline) throw this.fail(this.pos, 'a list after an anchor or a tag must start on the next line');
      return this.blockSequence(column, depth, anchor, tag, start);
    }
    if (isOneOf(here, '?:') && this.blankAt(this.pos + 1)) throw this.keyProblem();
    const key = this.tryKey();
    if (key !== null) {
      if (sameLine && after === 'key') {
        throw this.fail(
          key[1],
          'mapping values are not allowed here',
          'a mapping value cannot start on the line of its key',
        );
      }
      if (propsInline) {
        throw this.fail(propsStart, 'anchors and tags cannot be put on mapping keys', null, { atPath: true });
      }
      return this.blockMapping(column, depth, anchor, tag, start, key);
    }
    const node = this.value(indent, depth, anchor, tag, start);
    if (node instanceof Scalar && (node.style === '|' || node.style === '>')) {
      this.skipBlankLines(); // a block scalar ends at the start of a line
      return node;
    }
    this.skipSpaces();
    if (this.text[this.pos] === ':') {
      if (node instanceof Sequence || node instanceof Mapping || node instanceof Alias) {
        throw this.fail(this.pos, 'mapping keys must be strings', node instanceof Alias ? null : 'quote the key', {
          atPath: true,
        });
      }
      throw this.fail(
        this.pos,
        'mapping values are not allowed here',
        'a value that continues on another line cannot be a key; check the indentation',
      );
    }
    this.endLine('the value');
    this.skipBlankLines();
    return node;
  }

  /** Why the text at the current position, where a key belongs, is not a key. */
  keyProblem(flow = false) {
    const here = this.text[this.pos];
    if (here === '?' && this.blankAt(this.pos + 1)) {
      return this.fail(
        this.pos,
        "mapping keys must be strings written 'key: value'; explicit keys ('? ') are not supported",
        null,
        { atPath: true },
      );
    }
    if (here === ':' && (flow || this.blankAt(this.pos + 1))) {
      // inside { }, ':' always starts a value
      return this.fail(this.pos, "a mapping key is missing before ':'", null, { atPath: true });
    }
    if (isOneOf(here, '&!')) {
      return this.fail(this.pos, 'anchors and tags cannot be put on mapping keys', null, { atPath: true });
    }
    if (here === '*') return this.fail(this.pos, 'mapping keys must be strings, not aliases', null, { atPath: true });
    if (isOneOf(here, '[{')) {
      return this.fail(this.pos, 'mapping keys must be strings', 'quote the key', { atPath: true });
    }
    if (here === '-' && this.blankAt(this.pos + 1))
      return this.fail(this.pos, 'a list item where a mapping key belongs');
    return this.fail(this.pos, "expected 'key: value' at this indentation", KEY_HINT);
  }

  /** A simple key here: [key, offset of its ':'] (the position is unchanged), or null. */
  tryKey() {
    const start = this.pos;
    const here = this.text[start];
    if (isOneOf(here, '\'"')) {
      if (!this.quoteClosesOnLine(start)) return null;
      const scalar = this.quoted(false, -1);
      let colon = this.pos;
      this.pos = start;
      while (this.text[colon] === ' ') colon += 1;
      if (this.text[colon] === ':' && this.blankAt(colon + 1)) return [scalar, colon];
      return null;
    }
    if (!this.plainStarts(start, false)) return null;
    const end = this.plainLine(start, false);
    let colon = end;
    while (this.text[colon] === ' ') colon += 1;
    if (this.text[colon] === ':' && this.blankAt(colon + 1)) {
      return [new Scalar(start, this.text.slice(start, end)), colon];
    }
    return null;
  }

  blockMapping(column, depth, anchor, tag, start, first) {
    const node = new Mapping(start, anchor, tag);
    this.count(node);
    let [key, colon] = first;
    for (;;) {
      this.checkKeyLength(key, colon);
      this.pos = colon + 1;
      this.path.push(keyToken(key));
      const value = this.blockValue(column, depth + 1, 'key');
      this.path.pop();
      node.keys.push(key);
      node.values.push(value);
      if (this.pos >= this.n || this.atMarker()) return node.finished();
      const here = this.column();
      if (here < column) return node.finished();
      if (here > column) {
        throw this.fail(this.pos, 'bad indentation: this line is indented more than the keys above it');
      }
      const found = this.tryKey();
      if (found === null) throw this.keyProblem();
      [key, colon] = found;
    }
  }

  /** Whether the quoted scalar starting at `start` ends on the same line. */
  quoteClosesOnLine(start) {
    const quote = this.text[start];
    let offset = start + 1;
    while (offset < this.n) {
      const here = this.text[offset];
      if (here === '\n') return false;
      if (here === '\\' && quote === '"') {
        offset += 2;
        continue;
      }
      if (here === quote) {
        if (quote === "'" && this.text[offset + 1] === "'") {
          offset += 2;
          continue;
        }
        return true;
      }
      offset += 1;
    }
    return false;
  }

  checkKeyLength(key, colon) {
    if (this.locator.distance(key.start, colon) > MAX_KEY_LENGTH) {
      throw this.fail(key.start, `a mapping key is longer than ${MAX_KEY_LENGTH} characters`, null, {
        error: RecipeLimitError,
      });
    }
  }

  blockSequence(column, depth, anchor, tag, start) {
    const node = new Sequence(start, anchor, tag);
    this.count(node);
    for (;;) {
      this.pos += 1; // the '-'
      this.path.push(node.items.length);
      node.items.push(this.blockValue(column, depth + 1, 'entry'));
      this.path.pop();
      if (this.pos >= this.n || this.atMarker()) return node.finished();
      const here = this.column();
      if (here > column) {
        throw this.fail(this.pos, 'bad indentation: this line is indented more than the list items above it');
      }
      if (here < column || !this.atEntryIndicator()) return node.finished();
    }
  }

  // ---------------------------------------------------------------- node content
  properties(flow) {
    let anchor = null;
    let tag = null;
    for (;;) {
      const here = this.text[this.pos];
      if (here === '&') {
        if (anchor !== null) throw this.fail(this.pos, 'a value has two anchors');
        anchor = this.anchorName(flow);
      } else if (here === '!') {
        if (tag !== null) throw this.fail(this.pos, 'a value has two tags');
        const match = matchAt(flow ? TAG_FLOW : TAG_BLOCK, this.text, this.pos);
        tag = match[0];
        this.pos += tag.length;
        if (!this.blankAt(this.pos)) throw this.fail(this.pos, 'a tag must be followed by a space');
      } else {
        return [anchor, tag];
      }
      if (flow) this.skipFlowSpace();
      else this.skipSpaces();
    }
  }

  /** The name after '&' or '*' (the position is at that character). */
  anchorName(flow) {
    const match = matchAt(ANCHOR_NAME, this.text, this.pos + 1);
    if (match === null) {
      throw this.fail(this.pos + 1, "an anchor or alias needs a name made of letters, digits, '-' and '_'");
    }
    this.pos = this.pos + 1 + match[0].length;
    if (!this.blankAt(this.pos) && !(this.text[this.pos] === ':' || (flow && isOneOf(this.text[this.pos], ',]}')))) {
      throw this.fail(this.pos, "an anchor or alias name is made of letters, digits, '-' and '_'");
    }
    return match[0];
  }

  /** A scalar, alias or flow collection in block context. */
  value(indent, depth, anchor, tag, start) {
    const here = this.text[this.pos];
    if (here === '*') return this.alias(anchor, tag, false);
    if (isOneOf(here, '[{')) return this.flowCollection(depth, anchor, tag, start);
    let node;
    if (isOneOf(here, '|>')) node = this.blockScalar(indent, start);
    else if (isOneOf(here, '\'"')) node = this.quoted(false, indent);
    else if (this.plainStarts(this.pos, false)) node = this.plain(indent);
    else throw this.cannotStart();
    node.start = start;
    node.setProperties(anchor, tag);
    return this.count(node);
  }

  cannotStart() {
    const here = this.text[this.pos];
    if (here === '\t') return this.fail(this.pos, 'tab character outside a quoted string', TAB_HINT);
    if (here === '%' && this.column() === 0)
      return this.fail(this.pos, 'directives must come before the first document');
    if (isOneOf(here, '-?:'))
      return this.fail(this.pos, `${pyRepr(here)} followed by a space cannot start a value here`);
    return this.fail(this.pos, `character ${pyRepr(here)} cannot start a value`, 'quote the value to make it a string');
  }

  alias(anchor, tag, flow) {
    const start = this.pos;
    if (anchor !== null || tag !== null) throw this.fail(start, 'an alias cannot have an anchor or a tag');
    const name = this.anchorName(flow);
    const target = this.anchors.get(name);
    if (target === undefined) throw this.fail(start, `found undefined alias ${pyRepr(name)}`);
    return this.count(new Alias(start, target));
  }

  /** Whether a plain scalar can start at `offset`. */
  plainStarts(offset, flow) {
    const here = this.text[offset];
    if (here === EOF || BLANK.includes(here) || ',[]{}#&*!|>\'"%@`'.includes(here)) return false;
    if ('-?:'.includes(here)) {
      const after = this.text[offset + 1];
      if (after === EOF || BLANK.includes(after)) return false;
      // inside brackets ':' always separates a key from its value
      if (flow && (here === '?' || here === ':' || FLOW_INDICATORS.includes(after))) return false;
    }
    return !(flow && here === '?');
  }

  /** The end of a plain scalar's text on its first line (runs and the spaces between). */
  plainLine(start, flow) {
    const pattern = flow ? PLAIN_RUN_FLOW : PLAIN_RUN_BLOCK;
    let end = start;
    let offset = start;
    for (;;) {
      const match = matchAt(pattern, this.text, offset);
      if (match === null) return end;
      end = offset + match[0].length;
      offset = end;
      while (this.text[offset] === ' ') offset += 1;
      const next = this.text[offset];
      if (next === EOF || next === '\n' || next === '#' || next === '\t') return end;
    }
  }

  /** A plain scalar in block context; it may continue on lines indented past `indent`. */
  plain(indent) {
    const start = this.pos;
    const chunks = [];
    let end = this.plainLine(start, false);
    chunks.push(this.text.slice(start, end));
    for (;;) {
      let offset = end;
      while (this.text[offset] === ' ') offset += 1;
      if (this.text[offset] === '\t') throw this.fail(offset, 'tab character outside a quoted string', TAB_HINT);
      if (this.text[offset] !== '\n') break;
      // Line breaks: one folds into a space, each further one is kept.
      let breaks = 0;
      while (this.text[offset] === '\n') {
        offset += 1;
        breaks += 1;
        this.pos = offset;
        if (this.atMarker()) break;
        while (this.text[offset] === ' ') offset += 1;
      }
      this.pos = offset;
      const here = this.text[offset];
      if (this.atMarker() || here === EOF || here === '#' || this.column() <= indent || !this.plainContinues(offset)) {
        break;
      }
      if (here === '\t') throw this.fail(offset, 'tab character outside a quoted string', TAB_HINT);
      const lineEnd = this.plainLine(offset, false);
      chunks.push(breaks === 1 ? ' ' : '\n'.repeat(breaks - 1));
      chunks.push(this.text.slice(offset, lineEnd));
      end = lineEnd;
    }
    this.pos = end;
    return new Scalar(start, chunks.join(''));
  }

  plainContinues(offset) {
    return matchAt(PLAIN_RUN_BLOCK, this.text, offset) !== null;
  }

  /**
   * A single- or double-quoted scalar; in block context its continuation lines must be
   * indented past `indent`.
   */
  quoted(flow, indent) {
    const start = this.pos;
    const quote = this.text[start];
    const double = quote === '"';
    this.pos += 1;
    const chunks = [];
    const run = QUOTED_RUN[quote];
    for (;;) {
      const match = matchAt(run, this.text, this.pos);
      if (match !== null) {
        chunks.push(match[0]);
        this.pos += match[0].length;
      }
      const here = this.text[this.pos];
      if (here === quote) {
        if (!double && this.text[this.pos + 1] === "'") {
          chunks.push("'");
          this.pos += 2;
          continue;
        }
        this.pos += 1;
        break;
      }
      if (here === '\\') {
        if (this.text[this.pos + 1] === '\n') {
          // An escaped line break joins the lines without a space.
          this.pos += 1;
          this.foldQuoted(chunks, flow, indent, true);
        } else {
          this.escape(chunks);
        }
      } else if (here === ' ' || here === '\t') {
        const spaces = matchAt(SPACES, this.text, this.pos);
        this.pos += spaces[0].length;
        const next = this.text[this.pos];
        if (next !== '\n' && next !== EOF) chunks.push(spaces[0]);
      } else if (here === '\n') {
        this.foldQuoted(chunks, flow, indent, false);
      } else {
        throw this.fail(this.pos, 'found unexpected end of stream (while scanning a quoted scalar)');
      }
    }
    return new Scalar(start, chunks.join(''), quote);
  }

  /** Line breaks inside quotes: the first folds into a space (or, escaped, into nothing), each further one is kept. */
  foldQuoted(chunks, flow, indent, escaped) {
    let breaks = 0;
    while (this.text[this.pos] === '\n') {
      this.pos += 1;
      breaks += 1;
      if (this.atMarker()) throw this.fail(this.pos, 'a document marker inside a quoted string');
      this.pos += matchAt(SPACES, this.text, this.pos)[0].length;
    }
    const here = this.text[this.pos];
    if (!flow && here !== EOF && here !== '\n' && this.column() <= indent) {
      throw this.fail(
        this.pos,
        'a quoted string continued on another line must be indented past its key',
        'is the closing quote missing?',
      );
    }
    if (escaped) chunks.push('\n'.repeat(breaks - 1));
    else chunks.push(breaks === 1 ? ' ' : '\n'.repeat(breaks - 1));
  }

  /** An escape sequence in a double-quoted scalar (the position is at the backslash). */
  escape(chunks) {
    const start = this.pos;
    const code = this.text[start + 1];
    if (code === EOF) throw this.fail(start + 1, 'found unexpected end of stream (while scanning a quoted scalar)');
    if (Object.prototype.hasOwnProperty.call(ESCAPES, code)) {
      chunks.push(ESCAPES[code]);
      this.pos = start + 2;
      return;
    }
    if (Object.prototype.hasOwnProperty.call(ESCAPE_LENGTHS, code)) {
      const length = ESCAPE_LENGTHS[code];
      const digits = this.text.slice(start + 2, start + 2 + length);
      if (digits.length < length || !HEX.test(digits)) {
        throw this.fail(start, `expected escape sequence of ${length} hexadecimal numbers`);
      }
      const value = parseInt(digits, 16);
      if ((value >= 0xd800 && value <= 0xdfff) || value > 0x10ffff) {
        throw this.fail(
          start,
          `\\${code}${digits} is not a Unicode character`,
          'write the character itself, or \\U and its eight-digit code point',
        );
      }
      chunks.push(String.fromCodePoint(value));
      this.pos = start + 2 + length;
      return;
    }
    throw this.fail(
      start,
      `found unknown escape character ${pyRepr(String.fromCodePoint(this.text.codePointAt(start + 1)))}`,
    );
  }

  /** A literal (|) or folded (>) block scalar, read as PyYAML reads it. */
  blockScalar(indent, start) {
    const style = this.text[this.pos];
    this.pos += 1;
    let chomping = null;
    let increment = null;
    for (let i = 0; i < 2; i++) {
      const here = this.text[this.pos];
      if ((here === '+' || here === '-') && chomping === null) {
        chomping = here === '+';
        this.pos += 1;
      } else if (here >= '0' && here <= '9' && increment === null) {
        if (here === '0') throw this.fail(this.pos, "a block scalar's indentation indicator is 1 to 9");
        increment = Number(here);
        this.pos += 1;
      }
    }
    if (!this.blankAt(this.pos)) {
      throw this.fail(this.pos, 'expected a comment or a line break after the block scalar indicator');
    }
    this.endLine('the block scalar indicator');
    const minIndent = Math.max(indent + 1, 1);
    let breaks = [];
    let contentIndent;
    if (increment === null) {
      // The indentation is that of the first non-empty line (or more, after blank lines).
      let deepest = 0;
      for (;;) {
        while (this.text[this.pos] === ' ') this.pos += 1;
        deepest = Math.max(deepest, this.column());
        if (this.text[this.pos] !== '\n') break;
        breaks.push('\n');
        this.pos += 1;
      }
      contentIndent = Math.max(minIndent, deepest);
    } else {
      contentIndent = minIndent + increment - 1;
      this.blockBreaks(contentIndent, breaks);
    }
    if (this.text[this.pos] === '\t' && this.column() < contentIndent) {
      throw this.fail(this.pos, 'tab character in the indentation of a block scalar', TAB_HINT);
    }
    const chunks = [];
    let lineBreak = '';
    while (this.column() === contentIndent && this.pos < this.n) {
      chunks.push(...breaks);
      const leadingBlank = this.text[this.pos] === ' ' || this.text[this.pos] === '\t';
      let end = this.text.indexOf('\n', this.pos);
      if (end < 0) end = this.n;
      chunks.push(this.text.slice(this.pos, end));
      this.pos = end;
      lineBreak = this.pos < this.n ? '\n' : '';
      if (this.pos < this.n) this.pos += 1;
      breaks = [];
      this.blockBreaks(contentIndent, breaks);
      if (this.column() === contentIndent && this.pos < this.n) {
        const next = this.text[this.pos];
        if (style === '>' && lineBreak === '\n' && !leadingBlank && next !== ' ' && next !== '\t') {
          if (!breaks.length) chunks.push(' ');
        } else {
          chunks.push(lineBreak);
        }
      } else {
        break;
      }
    }
    if (this.text[this.pos] === '\t' && this.column() < contentIndent) {
      throw this.fail(this.pos, 'tab character in the indentation of a block scalar', TAB_HINT);
    }
    if (chomping !== false) chunks.push(lineBreak);
    if (chomping === true) chunks.push(...breaks);
    return new Scalar(start, chunks.join(''), style);
  }

  /** Empty lines inside a block scalar, each kept as a line break. */
  blockBreaks(contentIndent, breaks) {
    while (this.column() < contentIndent && this.text[this.pos] === ' ') this.pos += 1;
    while (this.text[this.pos] === '\n') {
      breaks.push('\n');
      this.pos += 1;
      while (this.column() < contentIndent && this.text[this.pos] === ' ') this.pos += 1;
    }
  }

  // ---------------------------------------------------------------- flow context
  flowCollection(depth, anchor, tag, start) {
    if (this.text[this.pos] === '[') return this.flowSequence(depth, anchor, tag, start);
    return this.flowMapping(depth, anchor, tag, start);
  }

  flowNode(depth) {
    const propsStart = this.pos;
    const [anchor, tag] = isOneOf(this.text[this.pos], '&!') ? this.properties(true) : [null, null];
    const hasProps = anchor !== null || tag !== null;
    const start = hasProps ? propsStart : this.pos;
    this.checkDepth(depth, start);
    const here = this.text[this.pos];
    if (here === '*') return this.alias(anchor, tag, true);
    if (isOneOf(here, '[{')) return this.flowCollection(depth, anchor, tag, start);
    let node;
    if (isOneOf(here, '\'"')) {
      node = this.quoted(true, -1);
    } else if (isOneOf(here, '|>')) {
      throw this.fail(this.pos, 'block scalars (| and >) cannot be used inside brackets');
    } else if (isOneOf(here, ',]}') || here === EOF) {
      if (hasProps) throw this.fail(propsStart, 'an anchor or a tag needs a value after it');
      throw this.fail(this.pos, here !== EOF ? 'expected a value' : 'found unexpected end of stream');
    } else if (here === '?') {
      throw this.fail(this.pos, "'?' inside brackets is not supported", "quote values that contain '?'");
    } else if (this.plainStarts(this.pos, true)) {
      const end = this.plainLine(this.pos, true);
      node = new Scalar(this.pos, this.text.slice(this.pos, end));
      this.pos = end;
    } else {
      throw this.cannotStart();
    }
    node.start = start;
    node.setProperties(anchor, tag);
    return this.count(node);
  }

  /** After an entry: ',' or the closing bracket must follow. */
  afterFlowEntry(closing, entryEnd) {
    const here = this.text[this.pos];
    if (here === ',' || here === closing) return;
    if (here === EOF) throw this.fail(this.pos, `did not find expected ',' or '${closing}' (unclosed bracket)`);
    if (here === '?') {
      throw this.fail(this.pos, "'?' inside brackets is not supported", "quote values that contain '?'");
    }
    const lineBreak = this.text.indexOf('\n', entryEnd);
    const crossedLine = lineBreak >= 0 && lineBreak < this.pos;
    if (crossedLine && this.plainStarts(this.pos, true)) {
      throw this.fail(
        this.pos,
        'a plain value inside brackets must fit on one line',
        "quote the value, or put a ',' between values",
      );
    }
    throw this.fail(this.pos, `did not find expected ',' or '${closing}'`);
  }

  flowSequence(depth, anchor, tag, start) {
    const node = new Sequence(start, anchor, tag);
    this.count(node);
    this.pos += 1;
    for (;;) {
      this.skipFlowSpace();
      if (this.text[this.pos] === ']') {
        this.pos += 1;
        return node.finished();
      }
      if (this.pos >= this.n) throw this.fail(this.pos, "did not find expected ',' or ']' (unclosed bracket)");
      this.path.push(node.items.length);
      const item = this.flowNode(depth + 1);
      this.path.pop();
      const entryEnd = this.pos;
      this.skipFlowSpace();
      if (
        this.text[this.pos] === ':' &&
        (!(item instanceof Scalar && item.style === '') ||
          this.blankAt(this.pos + 1) ||
          isOneOf(this.text[this.pos + 1], FLOW_INDICATORS))
      ) {
        throw this.fail(
          this.pos,
          "a 'key: value' pair inside [ ] is not supported",
          'write the mapping in braces: [{key: value}]',
          { atPath: true },
        );
      }
      node.items.push(item);
      this.afterFlowEntry(']', entryEnd);
      if (this.text[this.pos] === ']') {
        this.pos += 1;
        return node.finished();
      }
      this.pos += 1;
    }
  }

  flowMapping(depth, anchor, tag, start) {
    const node = new Mapping(start, anchor, tag);
    this.count(node);
    this.pos += 1;
    for (;;) {
      this.skipFlowSpace();
      const here = this.text[this.pos];
      if (here === '}') {
        this.pos += 1;
        return node.finished();
      }
      if (here === EOF) throw this.fail(this.pos, "did not find expected ',' or '}' (unclosed bracket)");
      const keyStart = this.pos;
      let key;
      if (isOneOf(here, '\'"')) {
        key = this.quoted(true, -1);
        if (this.text.slice(keyStart, this.pos).includes('\n')) {
          throw this.fail(keyStart, 'a mapping key must fit on one line');
        }
      } else if (here !== '?' && this.plainStarts(this.pos, true)) {
        const end = this.plainLine(this.pos, true);
        key = new Scalar(keyStart, this.text.slice(keyStart, end));
        this.pos = end;
      } else if (isOneOf(here, ',]')) {
        throw this.fail(this.pos, here === ',' ? 'expected a key' : "did not find expected ',' or '}'");
      } else {
        throw this.keyProblem(true);
      }
      this.skipSpaces();
      if (this.text[this.pos] !== ':') {
        throw this.fail(
          this.pos,
          "a key inside { } needs ': ' and a value",
          "write {key: value}; a ':' between words needs a space after it",
          { atPath: true },
        );
      }
      if (!key.style && isOneOf(this.text[this.pos + 1], FLOW_INDICATORS)) {
        // PyYAML's C reader refuses '{a:}' and '{a:[1]}' (its Python reader does not).
        throw this.fail(this.pos, "a ':' after an unquoted key inside { } must be followed by a space", null, {
          atPath: true,
        });
      }
      this.checkKeyLength(key, this.pos);
      this.pos += 1;
      const emptyAt = this.pos;
      this.path.push(keyToken(key));
      this.skipFlowSpace();
      const value = isOneOf(this.text[this.pos], ',}') ? this.count(new Scalar(emptyAt)) : this.flowNode(depth + 1);
      this.path.pop();
      const entryEnd = this.pos;
      this.skipFlowSpace();
      if (this.text[this.pos] === ':') throw this.fail(this.pos, 'mapping values are not allowed here');
      node.keys.push(key);
      node.values.push(value);
      this.afterFlowEntry('}', entryEnd);
      if (this.text[this.pos] === '}') {
        this.pos += 1;
        return node.finished();
      }
      this.pos += 1;
    }
  }
}

/** The key as a JSON pointer names it (integer keys are written in decimal). */
export function keyToken(key) {
  if (key.style || key.tag !== null || implicitTag(key.value) !== INT) return key.value;
  try {
    return String(construct(INT, key.value));
  } catch (error) {
    if (error instanceof ScalarValueError) return key.value;
    throw error;
  }
}

/** The documents of `text` (line breaks already LF, characters already checked): [{root, start}]. */
export function parseDocuments(text, file, locator) {
  return new Parser(text, file, locator).documents();
}
