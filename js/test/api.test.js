// The API: single-document validation, flat documents, resolution through the browser-safe core.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as core from '../src/core/index.js';
import { prettyJson, resolve, validate, validateFile, validateFlat } from '../src/node.js';
import { builtinRecipes } from '../recipes/bundle.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const RECIPE = `metadata:
  recipe_type: ptq
quantize:
  algorithm: max
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg:
        num_bits: e4m3
        axis: null
`;

test('validate reports an unknown key with a suggestion, where it was written', () => {
  const result = validate(RECIPE.replace('axis: null', 'axsi: null'));
  assert.equal(result.valid, false);
  const [error] = result.errors;
  assert.equal(error.code, 'schema');
  assert.equal(error.message, 'unknown key "axsi"');
  assert.equal(error.hint, 'did you mean "axis"?');
  assert.equal(error.pointer, '/quantize/quant_cfg/1/cfg/axsi');
  assert.deepEqual([error.line, error.column], [11, 9]);
});

test('validate tells kinds apart by shape, or checks the kind it is given', () => {
  assert.equal(validate(RECIPE).valid, true);
  assert.equal(validate('num_bits: e4m3\naxis: null\n').valid, true);
  assert.equal(validate({ num_bits: 'e4m3' }, 'attributes_snippet').valid, true);
  const entry = validate({ num_bits: 'e4m3' }, 'entry_snippet');
  assert.equal(entry.errors[0].message, 'unknown key "num_bits"');
  const exmy = validate('num_bits: e4x3\n');
  assert.equal(exmy.errors[0].message, '"e4x3" is not a number format written ExMy');
  assert.throws(() => validate('{}', 'no_such_kind'), /unknown kind/);
});

test('validate refuses duplicate keys and alias bombs', () => {
  const duplicate = validate('num_bits: 8\nnum_bits: 4\n');
  assert.equal(duplicate.errors[0].code, 'duplicate-key');
  assert.equal(duplicate.errors[0].message, "duplicate key 'num_bits' (first given on line 1)");
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const bomb = validate(`${levels.join('\n')}\n`);
  assert.equal(bomb.errors[0].code, 'limit');
});

test('resolve through the core with an in-memory host matches the Node resolver', () => {
  const host = core.memoryHost({ files: { '/project/recipe.yaml': RECIPE }, cwd: '/project', builtin: builtinRecipes });
  const inMemory = core.resolve('recipe.yaml', { host });
  const dir = fs.mkdtempSync(path.join(here, '..', 'node_modules', '.qrecipe-test-'));
  try {
    fs.writeFileSync(path.join(dir, 'recipe.yaml'), RECIPE);
    assert.equal(core.prettyJson(inMemory), prettyJson(resolve('recipe.yaml', { cwd: dir })));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const loaded = core.resolve('recipe.yaml', { host: core.memoryHost({ loader: (p) => (p === '/w/recipe.yaml' ? RECIPE : null), cwd: '/w' }) });
  assert.equal(loaded.fingerprint, inMemory.fingerprint);
});

test('validateFlat checks the schema and the fingerprint', () => {
  const host = core.memoryHost({ files: { '/project/recipe.yaml': RECIPE } });
  const flat = core.resolve('recipe.yaml', { host });
  assert.deepEqual(validateFlat(prettyJson(flat)), { valid: true, errors: [] });
  const edited = prettyJson({ ...flat, quantize: { ...flat.quantize, effective_bits: 4 } });
  const result = validateFlat(edited);
  assert.equal(result.valid, false);
  assert.equal(result.errors[0].code, 'fingerprint');
  assert.equal(result.errors[0].pointer, '/fingerprint');
  assert.equal(result.errors[0].line, 3);
  assert.equal(validateFlat('{"fingerprint": 1,}').errors[0].code, 'syntax');
});

test('the core imports no Node built-ins', () => {
  const coreDir = path.join(here, '..', 'src', 'core');
  for (const file of fs.readdirSync(coreDir)) {
    const text = fs.readFileSync(path.join(coreDir, file), 'utf8');
    assert.doesNotMatch(text, /from ['"]node:/, file);
  }
});

test('a file outside every search root is named by its absolute path, as in Python', () => {
  const scratch = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'qrecipe-outside-'));
  try {
    fs.mkdirSync(path.join(scratch, 'work'));
    fs.mkdirSync(path.join(scratch, 'outside'));
    const outside = path.join(scratch, 'outside', 'recipe.yaml');
    fs.writeFileSync(outside, 'metadata:\n  recipe_type: ptq\nquantize:\n  quant_cfg: 7\n');
    for (const target of [outside, '../outside/recipe.yaml']) {
      const [diagnostic] = validateFile(target, { cwd: path.join(scratch, 'work'), searchPath: '' });
      assert.deepEqual([diagnostic.code, diagnostic.file], ['schema', outside]);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

test('schema problems do not hide the import problems of the same file, as in Python', () => {
  const scratch = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'qrecipe-together-'));
  try {
    const head = 'metadata:\n  recipe_type: ptq\n  description: test recipe\n';
    const files = {
      'r.yaml':
        `${head}imports: {fp8: configs/numerics/fp8, gone: snippets/gone}\nquantize:\n  quant_cfg:\n` +
        "    - {quantizer_name: '*i*', cfg: {$import: fp9}}\n" +
        "    - {quantizer_name: '*w*', cfg: {$import: fp8}, enabel: true}\n",
      'unit.yaml':
        'imports: {fp8: configs/numerics/fp8, gone: snippets/gone}\n---\n' +
        "- {quantizer_name: '*w', cfg: {$import: fp8, axiss: 0}}\n",
      'bad_imports.yaml': `${head}imports: {fp8: 8}\nquantize:\n  quant_cfg:\n    - {quantizer_name: '*', cfg: {$import: fp9}}\n`,
    };
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(scratch, name), text);
    const check = (target) => validateFile(target, { cwd: scratch, searchPath: '' });
    assert.deepEqual(
      check('r.yaml').map((d) => [d.code, d.line, d.pointer]),
      [
        ['import-not-found', 4, '/imports/gone'],
        ['import-not-found', 7, '/quantize/quant_cfg/0/cfg/$import'],
        ['schema', 8, '/quantize/quant_cfg/1/enabel'],
      ],
    );
    assert.deepEqual(
      check('unit.yaml').map((d) => [d.code, d.line]),
      [
        ['import-not-found', 1],
        ['schema', 3],
      ],
    );
    const badImports = check('bad_imports.yaml');
    assert.deepEqual(
      badImports.map((d) => d.code),
      ['schema', 'import-not-found'],
    );
    assert.equal(badImports[1].hint, 'did you mean "fp8"?');
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

test('schema problems hide neither semantic problems nor problems in snippets, as in Python', () => {
  const scratch = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'qrecipe-every-'));
  try {
    const head = 'metadata:\n  recipe_type: ptq\n  description: test recipe\n';
    const files = {
      'r.yaml':
        `${head}imports: {w: snippets/w}\nquantize:\n  quant_cfg:\n` +
        "    - {quantizer_name: '*', enable: false}\n" +
        "    - {quantizer_name: '*i*', enabel: true}\n" +
        "    - {quantizer_name: '*o*', cfg: {}}\n" +
        '    - $import: w\n',
      'snippets/w.yaml': "imports: {n: snippets/none}\nquantizer_name: '*w*'\ncfg: {$import: n}\n",
      'valid_but_broken_snippet.yaml':
        `${head}imports: {w: snippets/w}\nquantize:\n  quant_cfg:\n` +
        '    - $import: w\n' +
        "    - {quantizer_name: '*o*', cfg: {enable: true}}\n",
      'only_broken.yaml': `${head}quantize:\n  quant_cfg:\n    - {quantizer_name: 5, enable: false}\n`,
    };
    fs.mkdirSync(path.join(scratch, 'snippets'));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(scratch, name), text);
    const check = (target) => validateFile(target, { cwd: scratch, searchPath: '' });
    assert.deepEqual(
      check('r.yaml').map((d) => [d.code, d.file, d.line, d.pointer]),
      [
        ['import-not-found', 'snippets/w.yaml', 1, '/imports/n'],
        ['schema', 'r.yaml', 8, '/quantize/quant_cfg/1/enabel'],
        ['semantic', 'r.yaml', 9, '/quantize/quant_cfg/2/cfg'],
      ],
    );
    assert.deepEqual(
      check('valid_but_broken_snippet.yaml').map((d) => [d.code, d.pointer]),
      [
        ['import-not-found', '/imports/n'],
        ['semantic', '/quantize/quant_cfg/1/cfg'],
      ],
    );
    assert.deepEqual(
      check('only_broken.yaml').map((d) => d.pointer),
      ['/quantize/quant_cfg/0/quantizer_name'],
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
