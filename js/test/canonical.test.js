// Canonical JSON (RFC 8785), the pretty form and SHA-256.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { canonicalJson, fingerprint, prettyJson, sha256Hex } from '../src/core/index.js';

test('keys sort by UTF-16 code units, as RFC 8785 requires', () => {
  // The sorting example of RFC 8785, section 3.2.3.
  const value = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    1: 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  const order = [...canonicalJson(value).matchAll(/"([^"]*)":/g)].map((m) => JSON.parse(`"${m[1]}"`));
  assert.deepEqual(order, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
});

test('numbers are written the ECMAScript way', () => {
  const numbers = [0, -0, 1, -1, 0.5, 1e21, 1e-7, 123456789012, 4.5e-5, 333333333.3333333, 1e23, 2 ** 53 - 1];
  assert.equal(
    canonicalJson(numbers),
    '[0,0,1,-1,0.5,1e+21,1e-7,123456789012,0.000045,333333333.3333333,1e+23,9007199254740991]',
  );
});

test('strings escape like JSON, without escaping non-ASCII', () => {
  assert.equal(canonicalJson({ a: 'é\n"\\\u0001\u2028' }), '{"a":"é\\n\\"\\\\\\u0001\u2028"}');
});

test('the pretty form indents by two spaces and ends in a newline', () => {
  assert.equal(prettyJson({ b: [], a: {}, c: [1, { d: null }] }), '{\n  "a": {},\n  "b": [],\n  "c": [\n    1,\n    {\n      "d": null\n    }\n  ]\n}\n');
});

test('the built-in SHA-256 matches node:crypto', () => {
  for (const text of ['', 'abc', 'a'.repeat(55), 'a'.repeat(56), 'a'.repeat(64), 'é'.repeat(1000)]) {
    const bytes = new TextEncoder().encode(text);
    assert.equal(sha256Hex(bytes), createHash('sha256').update(bytes).digest('hex'));
  }
});

test('the fingerprint covers quantize and recipe_type only', () => {
  const flat = { metadata: { recipe_type: 'ptq', description: 'x' }, quantize: { algorithm: null, quant_cfg: [], effective_bits: null } };
  const same = { ...flat, metadata: { recipe_type: 'ptq', description: 'reworded' } };
  assert.equal(fingerprint(flat), fingerprint(same));
  assert.match(fingerprint(flat), /^sha256:[0-9a-f]{64}$/);
});
