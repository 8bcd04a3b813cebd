// Runs the language-neutral conformance vectors (tests/vectors/cases) against this package.
// Shared by the test suite and by scripts that report agreement.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecipeError, prettyJson, resolve, sortDiagnostics, validateFile } from '../src/node.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CASES_DIR = path.resolve(here, '..', '..', 'tests', 'vectors', 'cases');
const COMPARED_ERROR_KEYS = ['code', 'file', 'pointer', 'line', 'column'];

export function caseDirs() {
  if (!fs.existsSync(CASES_DIR)) return [];
  return fs
    .readdirSync(CASES_DIR)
    .sort()
    .map((name) => path.join(CASES_DIR, name))
    .filter((dir) => fs.existsSync(path.join(dir, 'case.json')));
}

export function loadCase(caseDir) {
  return JSON.parse(fs.readFileSync(path.join(caseDir, 'case.json'), 'utf8'));
}

/** Create the files a case asks for at test time (big files, symbolic links, FIFOs). */
function generate(spec, work) {
  for (const item of spec.generate || []) {
    if (item.symlink !== undefined) {
      const link = path.join(work, item.symlink);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(item.target, link);
      continue;
    }
    if (item.fifo !== undefined) {
      const fifo = path.join(work, item.fifo);
      fs.mkdirSync(path.dirname(fifo), { recursive: true });
      execFileSync('mkfifo', [fifo]); // Node has no mkfifo of its own
      continue;
    }
    if (item.size !== undefined) {
      // A sparse file: its size costs no disk.
      const file = path.join(work, item.file);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.closeSync(fs.openSync(file, 'w'));
      fs.truncateSync(file, item.size);
      continue;
    }
    const text = (item.header || '') + item.line.repeat(item.repeat) + (item.footer || '');
    const file = path.join(work, item.file);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text, 'utf8');
  }
}

/** Copy `caseDir` to a fresh directory, generate its files and run its target there. */
export function runCase(caseDir, scratch) {
  const spec = loadCase(caseDir);
  const work = path.join(scratch, path.basename(caseDir));
  fs.cpSync(caseDir, work, { recursive: true, verbatimSymlinks: true });
  generate(spec, work);
  const options = { path: spec.path || [], cwd: work, searchPath: '' };
  if ('flat' in spec.expect) {
    try {
      return { flatText: prettyJson(resolve(spec.target, options)), diagnostics: [] };
    } catch (error) {
      if (!(error instanceof RecipeError)) throw error;
      return { flatText: null, diagnostics: sortDiagnostics(error.diagnostics) };
    }
  }
  return { flatText: null, diagnostics: sortDiagnostics(validateFile(spec.target, options)) };
}

/** Differences between a case's expectation and the outcome (empty when it passes). */
export function compare(caseDir, outcome) {
  const { expect } = loadCase(caseDir);
  const shown = outcome.diagnostics.map((d) => d.format());
  if ('flat' in expect) {
    if (outcome.flatText === null) return ['expected a flat recipe, got errors:', ...shown];
    const wanted = fs.readFileSync(path.join(caseDir, expect.flat));
    if (!Buffer.from(outcome.flatText, 'utf8').equals(wanted)) return [`resolved output differs from ${expect.flat}`];
    return [];
  }
  if ('valid' in expect) return outcome.diagnostics.length ? ['expected no diagnostics, got:', ...shown] : [];
  const wanted = expect.error;
  const first = outcome.diagnostics[0];
  if (!first) return [`expected error ${JSON.stringify(wanted)}, but the target is valid`];
  const actual = { code: first.code, file: first.file, pointer: first.pointer, line: first.line, column: first.column };
  const differences = COMPARED_ERROR_KEYS.filter((key) => key in wanted && wanted[key] !== actual[key]).map(
    (key) => `${key}: expected ${JSON.stringify(wanted[key])}, got ${JSON.stringify(actual[key])}`,
  );
  if ('diagnostics' in expect) differences.push(...everyDifference(expect.diagnostics, outcome.diagnostics));
  return differences.length ? [...differences, 'diagnostics:', ...shown] : [];
}

/** Differences between the whole expected list of diagnostics and the one produced. */
function everyDifference(wanted, diagnostics) {
  if (wanted.length !== diagnostics.length) return [`expected ${wanted.length} diagnostics, got ${diagnostics.length}`];
  const differences = [];
  wanted.forEach((want, index) => {
    const got = diagnostics[index];
    for (const key of COMPARED_ERROR_KEYS) {
      if (key in want && want[key] !== got[key]) {
        differences.push(`diagnostic ${index}: ${key}: expected ${JSON.stringify(want[key])}, got ${JSON.stringify(got[key])}`);
      }
    }
  });
  return differences;
}

export function makeScratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qrecipe-vectors-'));
}

// `node test/vectors.js [CASE...]`: report agreement.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const wanted = process.argv.slice(2);
  const scratch = makeScratch();
  let agree = 0;
  const dirs = caseDirs().filter((dir) => !wanted.length || wanted.some((w) => path.basename(dir).startsWith(w)));
  for (const dir of dirs) {
    let problems;
    try {
      problems = compare(dir, runCase(dir, scratch));
    } catch (error) {
      problems = [`crashed: ${error.stack}`];
    }
    const xfail = loadCase(dir).xfail;
    if (!problems.length) agree++;
    else console.log(`FAIL ${path.basename(dir)}${xfail ? ' (xfail)' : ''}\n  ${problems.join('\n  ')}`);
  }
  fs.rmSync(scratch, { recursive: true, force: true });
  console.log(`${agree}/${dirs.length} cases pass`);
}
