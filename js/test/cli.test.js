// The command line: exit codes and messages, compared with the Python command line on the same
// files when a Python with qrecipe installed is at hand ($QRECIPE_PYTHON, the repository's
// .venv, or python3); without one, only that comparison is skipped.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '..', 'bin', 'qrecipe.js');
const REPO = path.resolve(here, '..', '..');

const FILES = {
  'good.yaml': `metadata:
  recipe_type: ptq
  description: FP8 weights.
quantize:
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
imports:
  fp8: configs/numerics/fp8
`,
  'bad.yaml': `metadata:
  recipe_type: ptq
  descripton: typo
quantize:
  algorithm: maks
  quant_cfg:
    - quantizer_name: '*weight_quantizer'
      cfg:
        num_bits: e4x3
        axis: '0'
        calibrator: histogram
        unsinged: true
    - parent_class: nn.Linear
      enable: false
`,
  'dup.yaml': `metadata:
  recipe_type: ptq
metadata:
  recipe_type: ptq
`,
  'missing.yaml': `imports:
  gone: snippets/does_not_exist
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - $import: gone
`,
  'snippets/a.yaml': `imports:
  b: snippets/b
---
- $import: b
`,
  'snippets/b.yaml': `imports:
  a: snippets/a
---
- $import: a
`,
  'cycle.yaml': `imports:
  a: snippets/a
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - $import: a
`,
  'attrs.yaml': `num_bits: e4m3
axis: null
`,
  'every.yaml': `imports:
  fp8: configs/numerics/fp8
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
        axis: 0
        block_sizes: {-1: 16}
    - quantizer_name: '*a*'
      cfg: {}
`,
  'imports.yaml': `imports:
  fp8: configs/numerics/fp88
  nv: configs/numerics/nvfp44
  mine: snippets/aa
metadata:
  recipe_type: ptq
quantize:
  quant_cfg:
    - quantizer_name: '*weight_quantizer'
      cfg:
        $import: fp8
    - quantizer_name: '*input_quantizer'
      cfg:
        $import: [nv, fp9]
`,
};

let work;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'qrecipe-cli-'));
  for (const [name, text] of Object.entries(FILES)) {
    fs.mkdirSync(path.dirname(path.join(work, name)), { recursive: true });
    fs.writeFileSync(path.join(work, name), text);
  }
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function run(command, args, input = undefined) {
  const env = { ...process.env };
  delete env.QRECIPE_PATH;
  const result = spawnSync(command[0], [...command.slice(1), ...args], { cwd: work, env, encoding: 'utf8', input });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const js = (...args) => run([process.execPath, BIN], args);

function findPython() {
  const candidates = [process.env.QRECIPE_PYTHON, path.join(REPO, '.venv', 'bin', 'python'), 'python3'];
  for (const candidate of candidates) {
    if (!candidate) continue;
    const probe = spawnSync(candidate, ['-c', 'import qrecipe.cli'], { cwd: REPO, encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return null;
}

describe('exit codes and messages', () => {
  test('a valid recipe: exit 0 and "FILE: ok"', () => {
    const result = js('validate', 'good.yaml', 'attrs.yaml');
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'good.yaml: ok\nattrs.yaml: ok\n');
  });

  test('an invalid recipe: exit 1, file:line:col messages with hints, and a summary', () => {
    const result = js('validate', 'bad.yaml');
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^bad\.yaml:3:3: unknown key "descripton" \(at \/metadata\/descripton\)\n {2}hint: did you mean "description"\?$/m);
    assert.match(result.stderr, /^bad\.yaml:5:14: "maks" is not a valid value here \(at \/quantize\/algorithm\)$/m);
    assert.match(result.stderr, /^bad\.yaml:9:19: "e4x3" is not a number format written ExMy/m);
    assert.match(result.stderr, /^bad\.yaml:13:7: missing required key "quantizer_name"/m);
    assert.match(result.stderr, /problem\(s\) in 1 of 1 file\(s\)\n$/);
  });

  test('duplicate keys, missing snippets and cycles have their own codes', () => {
    const result = JSON.parse(js('validate', '--format', 'json', 'dup.yaml', 'missing.yaml', 'cycle.yaml').stdout);
    assert.equal(result.valid, false);
    assert.deepEqual(
      result.results.map((r) => [r.file, r.errors[0].code, r.errors[0].line, r.errors[0].pointer]),
      [
        ['dup.yaml', 'duplicate-key', 3, '/metadata'],
        ['missing.yaml', 'import-not-found', 2, '/imports/gone'],
        ['cycle.yaml', 'import-cycle', 4, '/0/$import'],
      ],
    );
  });

  test('every import problem of a file at once, with the names that were probably meant', () => {
    const result = js('validate', '--format', 'json', 'imports.yaml');
    const errors = JSON.parse(result.stdout).results[0].errors;
    assert.deepEqual(
      errors.map((e) => [e.code, e.line, e.pointer]),
      [
        ['import-not-found', 2, '/imports/fp8'],
        ['import-not-found', 3, '/imports/nv'],
        ['import-not-found', 4, '/imports/mine'],
        ['import-not-found', 14, '/quantize/quant_cfg/1/cfg/$import/1'],
      ],
    );
    assert.match(errors[0].hint, /^did you mean "configs\/numerics\/fp8"\? searched the current directory \(.+\) first, then: builtin, /);
    assert.match(errors[2].hint, /^did you mean "snippets\/a"\?/);
    assert.equal(errors[3].hint, 'did you mean "fp8"?');
  });

  test('github annotations', () => {
    const result = js('validate', '--format', 'github', 'dup.yaml');
    assert.equal(result.status, 1);
    assert.match(result.stdout, /^::error file=dup\.yaml,line=3,col=1::duplicate key 'metadata'/);
  });

  test('usage errors exit 2', () => {
    assert.equal(js('validate').status, 2);
    assert.equal(js('frobnicate').status, 2);
    assert.equal(js('validate', '--format', 'xml', 'good.yaml').status, 2);
    assert.equal(js('schema', '--path', '.', 'flat').status, 2);
    assert.equal(js().status, 2);
    const badRoot = js('validate', '--path', 'no_such_dir', 'good.yaml');
    assert.equal(badRoot.status, 2);
    assert.equal(badRoot.stderr, "qrecipe: error: --path 'no_such_dir' is not a directory\n");
  });

  test('resolve writes the pretty form, the canonical form, or a file', () => {
    const pretty = js('resolve', 'good.yaml');
    assert.equal(pretty.status, 0);
    const flat = JSON.parse(pretty.stdout);
    assert.equal(flat.quantize.quant_cfg[1].cfg.num_bits.join(','), '4,3');
    const canonical = js('resolve', '--canonical', 'good.yaml');
    assert.equal(canonical.stdout, JSON.stringify(JSON.parse(canonical.stdout)).length === canonical.stdout.length ? canonical.stdout : '');
    assert.equal(js('resolve', 'good.yaml', '-o', 'out.json').status, 0);
    assert.equal(fs.readFileSync(path.join(work, 'out.json'), 'utf8'), pretty.stdout);
    assert.equal(js('fingerprint', 'out.json').stdout, `${flat.fingerprint}\n`);
    assert.equal(js('resolve', 'bad.yaml').status, 1);
  });
});

const python = findPython();

describe('same output as the Python command line', { skip: !python && 'no Python with qrecipe found' }, () => {
  const py = (...args) => run([python, '-m', 'qrecipe'], args);
  const cases = [
    ['validate', 'good.yaml', 'attrs.yaml'],
    ['validate', 'bad.yaml', 'dup.yaml', 'missing.yaml', 'cycle.yaml', 'snippets/a.yaml'],
    ['validate', '--format', 'json', 'bad.yaml', 'dup.yaml', 'missing.yaml', 'cycle.yaml', 'good.yaml'],
    ['validate', '--format', 'github', 'bad.yaml', 'missing.yaml'],
    ['validate', 'imports.yaml', 'general/ptq/fp8_defalt-kv_fp8'],
    ['validate', 'snippets', '.'],
    ['validate', '--format', 'json', 'every.yaml'],
    ['resolve', 'good.yaml'],
    ['resolve', '--canonical', 'good.yaml'],
    ['resolve', 'general/ptq/fp8_default-kv_fp8'],
    ['resolve', 'bad.yaml'],
    ['fingerprint', 'good.yaml'],
    ['list'],
    ['list', '--path', '.'],
    ['list', '--format', 'json', '--path', '.'],
    ['schema', 'flat'],
    ['schema', 'catalog'],
    [],
  ];
  test('qrecipe validate - (standard input)', () => {
    for (const name of ['good.yaml', 'imports.yaml', 'attrs.yaml']) {
      const input = fs.readFileSync(path.join(work, name), 'utf8');
      const expected = run([python, '-m', 'qrecipe'], ['validate', '-'], input);
      const actual = run([process.execPath, BIN], ['validate', '-'], input);
      assert.equal(actual.status, expected.status, name);
      assert.equal(actual.stdout, expected.stdout, name);
      assert.equal(actual.stderr, expected.stderr, name);
      assert.ok(!actual.stderr.includes('qrecipe-stdin-'), actual.stderr);
    }
  });

  for (const args of cases) {
    test(`qrecipe ${args.join(' ')}`, () => {
      const expected = py(...args);
      const actual = js(...args);
      assert.equal(actual.status, expected.status);
      assert.equal(actual.stdout, expected.stdout);
      assert.equal(actual.stderr, expected.stderr);
    });
  }
});
