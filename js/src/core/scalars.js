// What a plain YAML scalar means: the YAML 1.1 types recipes are read with.
//
// ModelOpt reads recipes with PyYAML, so `yes`/`on` are booleans, `0x1f`, `010` and `1_000`
// are integers and `1e-5` (no dot) is a string. These are PyYAML's resolution rules, applied
// exactly as the Python package does (src/qrecipe/language/scalars.py); each rule is pinned
// by a conformance vector.

import { MAX_SAFE_INTEGER } from './limits.js';
import { pyRepr } from './show.js';

export const TAG = 'tag:yaml.org,2002:';
export const STR = `${TAG}str`;
export const INT = `${TAG}int`;
export const FLOAT = `${TAG}float`;
export const BOOL = `${TAG}bool`;
export const NULL = `${TAG}null`;
export const MERGE = `${TAG}merge`;
export const TIMESTAMP = `${TAG}timestamp`;
export const VALUE = `${TAG}value`;

// The implicit types of plain scalars, in the order they are tried.
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
    TIMESTAMP,
    /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
  ],
  [VALUE, /^(?:=)$/],
];

const BOOLS = { yes: true, no: false, true: true, false: false, on: true, off: false };

// Only texts starting with one of these can be anything but a string.
const TYPED_FIRST = new Set('yYnNtTfFoO0123456789+-.~<=');

/** The type of a plain scalar written `text`. */
export function implicitTag(text) {
  if (text && !TYPED_FIRST.has(text[0])) return STR;
  for (const [tag, pattern] of IMPLICIT) {
    if (pattern.test(text)) return tag;
  }
  return STR;
}

/** A scalar that looks like a number (or boolean) but cannot be read as one. */
export class ScalarValueError extends Error {}

/**
 * The value of a scalar of type `tag` written `text` (its text must have that type).
 * Throws ScalarValueError for text of that type that names no value: an integer without
 * digits (`0x_`), or a number JSON cannot hold (beyond ±(2^53-1), infinite, NaN).
 */
export function construct(tag, text) {
  if (tag === NULL) return null;
  if (tag === BOOL) return BOOLS[text.toLowerCase()];
  if (tag === INT) return constructInt(text);
  if (tag === FLOAT) return constructFloat(text);
  return text;
}

const DIGITS = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]+$/ };
const PREFIX = { 2: '0b', 8: '0o', 16: '0x', 10: '' };

function constructInt(text) {
  let value = text.replaceAll('_', '');
  const sign = value[0] === '-' ? -1n : 1n;
  if (value[0] === '+' || value[0] === '-') value = value.slice(1);
  if (value === '0') return 0;
  let digits;
  let base;
  if (value.startsWith('0b')) [digits, base] = [value.slice(2), 2];
  else if (value.startsWith('0x')) [digits, base] = [value.slice(2), 16];
  else if (value.startsWith('0')) [digits, base] = [value.slice(1), 8];
  else if (value.includes(':')) {
    let result = 0n;
    for (const part of value.split(':')) result = result * 60n + BigInt(part);
    return safe(sign * result, text);
  } else [digits, base] = [value, 10];
  if (!digits) throw new ScalarValueError(`${pyRepr(text)} looks like an integer but has no digits`);
  if (!DIGITS[base].test(digits)) throw new ScalarValueError(`${pyRepr(text)} is not an integer`);
  return safe(sign * BigInt(`${PREFIX[base]}${digits}`), text);
}

function safe(value, text) {
  const limit = BigInt(MAX_SAFE_INTEGER);
  if (value > limit || value < -limit) {
    throw new ScalarValueError(`integer ${text} is too large for JSON (limit ±${MAX_SAFE_INTEGER})`);
  }
  return Number(value);
}

function constructFloat(text) {
  let value = text.replaceAll('_', '').toLowerCase();
  const sign = value[0] === '-' ? -1 : 1;
  if (value[0] === '+' || value[0] === '-') value = value.slice(1);
  if (value === '.inf' || value === '.nan') throw new ScalarValueError(`${pyRepr(text)} is not a finite number`);
  let number;
  if (value.includes(':')) {
    // Least significant part first, as PyYAML adds them.
    let result = 0;
    let base = 1;
    for (const part of value.split(':').reverse()) {
      result += Number(part) * base;
      base *= 60;
    }
    number = sign * result;
  } else {
    number = sign * Number(value);
  }
  if (!Number.isFinite(number)) throw new ScalarValueError(`${pyRepr(text)} is not a finite number`);
  return number === 0 ? 0 : number; // -0 reads as 0, as in Python's output
}
