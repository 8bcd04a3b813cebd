// The shipped schemas are the published ones, byte for byte, and the explanation engine agrees
// with ajv on what is valid.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parseYaml } from '../src/core/yamlio.js';
import { ajvFindsValid, explainerFindsValid, SCHEMAS } from '../src/core/schemacheck.js';
import { detectKind, schemaText } from '../src/node.js';
import { caseDirs } from './vectors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.resolve(here, '..');
const pythonSchemas = path.resolve(packageRoot, '..', 'src', 'qrecipe', 'schema');

for (const file of ['recipe.schema.json', 'flat.schema.json']) {
  test(`${file} is a byte-identical copy of the published schema`, { skip: !fs.existsSync(pythonSchemas) }, () => {
    const shipped = fs.readFileSync(path.join(packageRoot, 'schema', file));
    const published = fs.readFileSync(path.join(pythonSchemas, file));
    assert.ok(shipped.equals(published), `js/schema/${file} differs; run npm run build`);
  });
}

test('schemaText returns the exact published text', () => {
  const shipped = fs.readFileSync(path.join(packageRoot, 'schema', 'recipe.schema.json'), 'utf8');
  assert.equal(schemaText('recipe'), shipped);
});

test('editor annotation keywords are accepted without turning strict mode off', () => {
  // Compiling in strict mode would throw on an unknown keyword.
  assert.equal(ajvFindsValid({ metadata: { recipe_type: 'ptq' }, quantize: { quant_cfg: [] } }), true);
  assert.ok(JSON.stringify(SCHEMAS.recipe).includes('markdownDescription'));
});

function* vectorDocuments() {
  for (const dir of caseDirs()) {
    const stack = [dir];
    while (stack.length) {
      const current = stack.pop();
      for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
        const file = path.join(current, entry.name);
        if (entry.isDirectory()) stack.push(file);
        else if (/\.ya?ml$/.test(entry.name)) {
          let documents;
          try {
            documents = parseYaml(fs.readFileSync(file), file);
          } catch {
            continue;
          }
          for (const doc of documents) yield [file, doc.data];
        }
      }
    }
  }
}

test('ajv and the explanation engine agree on the validity of every vector document', () => {
  let checked = 0;
  for (const [file, data] of vectorDocuments()) {
    if (data === null || typeof data !== 'object') continue;
    const kinds = [null, Array.isArray(data) ? 'entry_list' : detectKind(data)];
    for (const kind of kinds) {
      assert.equal(explainerFindsValid(data, 'recipe', kind), ajvFindsValid(data, 'recipe', kind), `${file} (${kind})`);
      checked++;
    }
  }
  for (const dir of caseDirs()) {
    const expected = path.join(dir, 'expected.flat.json');
    if (!fs.existsSync(expected)) continue;
    const flat = JSON.parse(fs.readFileSync(expected, 'utf8'));
    assert.equal(explainerFindsValid(flat, 'flat'), ajvFindsValid(flat, 'flat'), expected);
    checked++;
  }
  assert.ok(checked > 0 || caseDirs().length === 0);
});
