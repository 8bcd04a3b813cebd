// Canonical bytes (RFC 8785), the fingerprint, and the stable pretty form.
//
// Both output forms sort keys by UTF-16 code units and write numbers the ECMAScript way, which
// is exactly what RFC 8785 prescribes, so the pretty form is as reproducible as the canonical
// one, and both are byte-identical to the Python implementation's.

import { sha256Hex } from './sha256.js';

export const FINGERPRINT_PREFIX = 'sha256:';

function keysInOrder(object) {
  // Array.prototype.sort compares strings by UTF-16 code units, the order RFC 8785 requires.
  return Object.keys(object).sort();
}

function scalarText(value) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot serialise ${value} as JSON`);
    // ECMAScript number-to-string is the RFC 8785 number form ("-0" becomes "0").
    return Object.is(value, -0) ? '0' : String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  throw new TypeError(`cannot serialise ${typeof value} as JSON`);
}

/** RFC 8785 (JSON Canonicalization Scheme) text of a JSON value. */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${keysInOrder(value)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(',')}}`;
  }
  return scalarText(value);
}

/** RFC 8785 bytes (UTF-8) of a JSON value. */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalJson(value));
}

/** Indented JSON with RFC 8785 key order and number formatting, ending in a newline. */
export function prettyJson(value, indent = 2) {
  const write = (node, level) => {
    const pad = ' '.repeat(indent * (level + 1));
    const end = ' '.repeat(indent * level);
    if (Array.isArray(node)) {
      if (!node.length) return '[]';
      return `[\n${node.map((item) => pad + write(item, level + 1)).join(',\n')}\n${end}]`;
    }
    if (node !== null && typeof node === 'object') {
      const keys = keysInOrder(node);
      if (!keys.length) return '{}';
      const items = keys.map((key) => `${pad}${JSON.stringify(key)}: ${write(node[key], level + 1)}`);
      return `{\n${items.join(',\n')}\n${end}}`;
    }
    return scalarText(node);
  };
  return `${write(value, 0)}\n`;
}

/** The part of a flat recipe that its fingerprint covers. */
export function semanticContent(flat) {
  return { quantize: flat.quantize, recipe_type: flat.metadata.recipe_type };
}

/**
 * `sha256:<hex>` of the canonical bytes of the recipe's semantic content.
 * @param {object} flat a flat recipe
 * @param {(bytes: Uint8Array) => string} [hash] hex SHA-256 (defaults to a built-in one)
 */
export function fingerprint(flat, hash = sha256Hex) {
  return FINGERPRINT_PREFIX + hash(canonicalBytes(semanticContent(flat)));
}
