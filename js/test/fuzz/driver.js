// The JavaScript side of the differential fuzzer (tests/fuzz/): one request per input line
// (JSON), one answer per output line, so that thousands of cases run in one process.
//
//   {"op": "yaml" | "json", "bytes": BASE64, "file": NAME}   parse one text
//   {"op": "cli", "cwd": DIR, "argv": [...]}                   run the command line there
//   {"op": "case", "cwd": DIR, "target": T, "path": [...], "files": [...]}
//       everything the fuzzer compares for one case: `resolve` and `validate` on the command
//       line, the sorted diagnostics of validate and of resolve, and what each file reads as
//
// Anything that is not a RecipeError is reported as {"crash": stack}: the fuzzer fails on it.

import fs from 'node:fs';
import nodePath from 'node:path';
import readline from 'node:readline';
import { main } from '../../src/cli.js';
import { canonicalJson } from '../../src/core/canonical.js';
import { RecipeError, sortDiagnostics } from '../../src/core/errors.js';
import { parseJson } from '../../src/core/jsonio.js';
import { parseYaml } from '../../src/core/yamlio.js';
import { resolve, validateFile } from '../../src/node.js';

function diagnostic(d) {
  return {
    code: d.code,
    message: d.message,
    file: d.file,
    line: d.line,
    column: d.column,
    pointer: d.pointer,
    chain: d.chain,
    hint: d.hint,
  };
}

function documentView(doc) {
  return {
    data: canonicalJson(doc.data),
    positions: Object.fromEntries(doc.positions),
    keys: Object.fromEntries(doc.keyPositions),
    start: doc.start,
  };
}

function parseView(bytes, file) {
  try {
    const documents = file.endsWith('.json') ? [parseJson(bytes, file)] : parseYaml(bytes, file);
    return { documents: documents.map(documentView) };
  } catch (error) {
    if (error instanceof RecipeError) return { error: diagnostic(error.first) };
    throw error;
  }
}

function parse(request) {
  return parseView(new Uint8Array(Buffer.from(request.bytes, 'base64')), request.file);
}

function cli(request) {
  let out = '';
  let err = '';
  const status = main(request.argv, {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    cwd: request.cwd,
  });
  return { status, stdout: Buffer.from(out, 'utf8').toString('base64'), stderr: err };
}

function sorted(diagnostics) {
  return sortDiagnostics(diagnostics).map(diagnostic);
}

function runCase(request) {
  const roots = request.path.flatMap((root) => ['--path', root]);
  const result = {
    resolve: cli({ cwd: request.cwd, argv: ['resolve', request.target, ...roots] }),
    validate: cli({ cwd: request.cwd, argv: ['validate', request.target, ...roots] }),
  };
  const options = { path: request.path, cwd: request.cwd, searchPath: '' };
  result.validateDiagnostics = sorted(validateFile(request.target, options));
  try {
    resolve(request.target, options);
    result.resolveDiagnostics = [];
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
    result.resolveDiagnostics = sorted(error.diagnostics);
  }
  result.parse = {};
  for (const name of request.files) {
    result.parse[name] = parseView(new Uint8Array(fs.readFileSync(nodePath.join(request.cwd, name))), name);
  }
  return result;
}

const OPS = { yaml: parse, json: parse, cli, case: runCase };

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let answer;
  try {
    const request = JSON.parse(line);
    const started = process.hrtime.bigint();
    answer = OPS[request.op](request);
    answer.ms = Number(process.hrtime.bigint() - started) / 1e6;
  } catch (error) {
    answer = { crash: String(error && error.stack ? error.stack : error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
