// Where values and keys are: the position table of a document, looked up by JSON pointer.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecipeError } from '../src/core/errors.js';
import { parseJson } from '../src/core/jsonio.js';
import { parseYaml } from '../src/core/yamlio.js';

const items = Array.from({ length: 20 }, (_, i) => `  - item${i}\n`).join('');
const keys = Array.from({ length: 20 }, (_, i) => `  k${i}: ${i}\n`).join('');
const TEXT = `a~/b: 1\nlist:\n${items}big:\n${keys}"__proto__": {q: [1, {r: 2}]}\n7: x\n`;
const LIST_LINE = 3; // line of item0
const BIG_LINE = LIST_LINE + 21; // line of k0

test('a value is found by its pointer, escaped tokens and large containers included', () => {
  const [doc] = parseYaml(TEXT, 'p.yaml');
  assert.deepEqual(doc.position(''), [1, 1]);
  assert.deepEqual(doc.position('/a~0~1b'), [1, 7]);
  assert.deepEqual(doc.position('/a~0~1b', { key: true }), [1, 1]);
  assert.deepEqual(doc.position('/list/0'), [LIST_LINE, 5]);
  assert.deepEqual(doc.position('/list/17'), [LIST_LINE + 17, 5]);
  assert.deepEqual(doc.position('/big/k18'), [BIG_LINE + 18, 8]);
  assert.deepEqual(doc.position('/big/k18', { key: true }), [BIG_LINE + 18, 3]);
  assert.deepEqual(doc.position('/__proto__/q/1/r'), [BIG_LINE + 20, 26]);
  assert.deepEqual(doc.position('/7'), [BIG_LINE + 21, 4]);
});

test('a pointer to nothing falls back to the nearest enclosing value', () => {
  const [doc] = parseYaml(TEXT, 'p.yaml');
  const list = doc.position('/list');
  for (const pointer of ['/list/20', '/list/017', '/list/-', '/list/1x', '/list/x/y']) {
    assert.deepEqual(doc.position(pointer), list, pointer);
  }
  assert.deepEqual(doc.position('/big/k99', { key: true }), doc.position('/big'));
  assert.deepEqual(doc.position('/a~/b'), [1, 1]); // not an escaped token: the root
  assert.deepEqual(doc.position('/a~2b'), [1, 1]);
  assert.deepEqual(doc.position('/big/k3/deeper'), doc.position('/big/k3'));
});

test('the positions view lists every value and key in the order they were written', () => {
  const [doc] = parseYaml('a: [1, {b: 2}]\nc: 3\n', 'p.yaml');
  assert.deepEqual(
    [...doc.positions],
    [
      ['', [1, 1]],
      ['/a', [1, 4]],
      ['/a/0', [1, 5]],
      ['/a/1', [1, 8]],
      ['/a/1/b', [1, 12]],
      ['/c', [2, 4]],
    ],
  );
  assert.deepEqual(
    [...doc.keyPositions],
    [
      ['/a', [1, 1]],
      ['/a/1/b', [1, 9]],
      ['/c', [2, 1]],
    ],
  );
});

test('a value reached through an alias is where its anchor is, and stays built after it', () => {
  const [doc] = parseYaml('a: &x {b: [1, 2]}\nc: *x\nd: *x\n', 'p.yaml');
  assert.deepEqual(doc.data, { a: { b: [1, 2] }, c: { b: [1, 2] }, d: { b: [1, 2] } });
  assert.deepEqual(doc.position('/d/b/1'), [1, 15]);
});

function failure(parse) {
  try {
    parse();
  } catch (error) {
    if (error instanceof RecipeError) return error.first;
    throw error;
  }
  assert.fail('no error');
}

test('a repeated key names the line of its first use, in a large mapping too', () => {
  const yaml = failure(() => parseYaml(`m:\n${keys}  k17: again\n`, 'p.yaml'));
  assert.equal(yaml.message, "duplicate key 'k17' (first given on line 19)");
  assert.equal(yaml.pointer, '/m/k17');
  assert.deepEqual([yaml.line, yaml.column], [22, 3]);
  const members = Array.from({ length: 20 }, (_, i) => `"k${i}": ${i}`).join(',\n');
  const json = failure(() => parseJson(`{"m": {\n${members},\n"k17": 0}}`, 'p.json'));
  assert.equal(json.message, "duplicate key 'k17' (first given on line 19)");
  assert.equal(json.pointer, '/m/k17');
});

test('an error inside a document names the pointer of the value', () => {
  const error = failure(() => parseYaml('a:\n  - {b: !!set x}\n', 'p.yaml'));
  assert.equal(error.pointer, '/a/0/b');
  assert.deepEqual([error.line, error.column], [2, 9]);
});

test('positions of a JSON document are found like those of YAML', () => {
  const doc = parseJson('{"a": [1, {"b~": 2}],\n "c": 3}', 'p.json');
  assert.deepEqual(doc.position('/a/1/b~0'), [1, 18]);
  assert.deepEqual(doc.position('/a/1/b~0', { key: true }), [1, 12]);
  assert.deepEqual(doc.position('/c'), [2, 7]);
  assert.deepEqual(doc.position('/a/5'), [1, 7]);
});
