// Properties of the readers that must hold for any input (fast-check): no text, no bytes and no
// JSON value makes them throw anything but a RecipeError, and what the JSON reader reads back
// from the pretty form is the value written. The differential fuzzer (tests/fuzz, run from
// Python) compares this package with the Python one on generated recipe trees.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, prettyJson } from '../src/core/canonical.js';
import { RecipeError } from '../src/core/errors.js';
import { validate } from '../src/core/index.js';
import { parseJson } from '../src/core/jsonio.js';
import { parseYaml } from '../src/core/yamlio.js';

const RUNS = Number(process.env.QRECIPE_FAST_CHECK_RUNS || 2000);
const SEED = 20260101;

// Characters that matter to YAML, weighted so that short texts hit the interesting paths.
const YAML_PIECES = [
  ' ', '  ', '\n', '\r\n', '\r', '\t', '- ', ':', ': ', '#', ' #', '"', "'", '\\', '[', ']', '{', '}', ',',
  '&a ', '*a', '!!str ', '!!int ', '!x ', '|', '>-', '---\n', '...\n', '%YAML 1.1\n', '? ', 'key', 'a: b',
  'yes', '0x_', '1.5', '~', '<<', '\u0085', '\u2028', '\ufeff', '\u00e9', '\u{1F600}', '\\ud800', '\\x41', '\0',
]; // prettier-ignore
const yamlText = fc.array(fc.oneof(fc.constantFrom(...YAML_PIECES), fc.string()), { maxLength: 40 }).map((parts) => parts.join(''));

function onlyRecipeErrors(read) {
  try {
    read();
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
  }
}

test('the YAML reader gives data or a RecipeError for any text', () => {
  fc.assert(
    fc.property(yamlText, (text) => onlyRecipeErrors(() => parseYaml(text, 'f.yaml'))),
    { numRuns: RUNS, seed: SEED },
  );
});

test('the YAML and JSON readers give data or a RecipeError for any bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      onlyRecipeErrors(() => parseYaml(bytes, 'f.yaml'));
      onlyRecipeErrors(() => parseJson(bytes, 'f.json'));
    }),
    { numRuns: RUNS, seed: SEED },
  );
});

test('validate gives a result, never an exception, for any text', () => {
  fc.assert(
    fc.property(yamlText, (text) => {
      const result = validate(text);
      assert.equal(typeof result.valid, 'boolean');
    }),
    { numRuns: RUNS, seed: SEED },
  );
});

// Integers beyond 2^53 - 1 are refused by design (they do not survive JSON in JavaScript).
function safeIntegers(value) {
  if (typeof value === 'number') return !Number.isInteger(value) || Number.isSafeInteger(value);
  if (Array.isArray(value)) return value.every(safeIntegers);
  if (value !== null && typeof value === 'object') return Object.values(value).every(safeIntegers);
  return true;
}

test('the JSON reader reads back what the pretty and canonical forms write', () => {
  const value = fc.jsonValue({ maxDepth: 4 }).filter(safeIntegers);
  fc.assert(
    fc.property(value, (data) => {
      for (const text of [prettyJson(data), canonicalJson(data)]) {
        assert.equal(canonicalJson(parseJson(text, 'f.json').data), canonicalJson(data));
      }
    }),
    { numRuns: RUNS, seed: SEED },
  );
});
