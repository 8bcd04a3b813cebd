// Rendering values in messages exactly as the Python implementation does, so that both
// command lines print the same text: JSON with sorted keys and ", " / ": " separators for
// values, and Python's repr for the few strings messages quote that way.

import { UNPRINTABLE } from './unprintable.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A number as Python's `repr(float)` writes it (shortest round-trip digits). */
export function pythonFloatRepr(value) {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa, exponentText] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  let body;
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const sign = exponent < 0 ? '-' : '+';
    body = `${fraction}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  } else if (exponent < 0) {
    body = `0.${'0'.repeat(-exponent - 1)}${digits}`;
  } else if (digits.length <= exponent + 1) {
    body = `${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  }
  return negative ? `-${body}` : body;
}

function numberText(value) {
  if (Number.isInteger(value) && Math.abs(value) <= MAX_SAFE) return String(value);
  return pythonFloatRepr(value);
}

function compareCodePoints(a, b) {
  // Python sorts str by code point; JavaScript's default sort uses UTF-16 code units.
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** A value as Python's `json.dumps(value, ensure_ascii=False, sort_keys=True)` writes it. */
export function show(value) {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return numberText(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  const keys = Object.keys(value).sort(compareCodePoints);
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${show(value[k])}`).join(', ')}}`;
}

/** Whether Python's repr escapes the code point (the generated table of `str.isprintable`). */
function unprintable(code) {
  let low = 0;
  let high = UNPRINTABLE.length / 2 - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (code < UNPRINTABLE[2 * middle]) high = middle - 1;
    else if (code > UNPRINTABLE[2 * middle + 1]) low = middle + 1;
    else return true;
  }
  return false;
}

/** Python's `repr()` of a string. */
export function pyRepr(text) {
  if (typeof text !== 'string') {
    if (typeof text === 'number') return numberText(text);
    if (text === null || text === undefined) return 'None';
    if (typeof text === 'boolean') return text ? 'True' : 'False';
    return String(text);
  }
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (!unprintable(code)) out += ch;
    else if (code < 0x100) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return out + quote;
}

/** "a mapping", "a list", ... as Python's `describe_type`. */
export function describeType(value) {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'object':
      return 'a mapping';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return Number.isInteger(value) && Math.abs(value) <= MAX_SAFE ? 'an integer' : 'a number';
    default:
      return typeof value;
  }
}

/** Python's `_kind_of_value` in the resolver. */
export function kindOfValue(value) {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `the scalar ${show(value)}`;
}
