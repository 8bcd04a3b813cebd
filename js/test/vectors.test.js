// Every conformance vector of tests/vectors/cases must give the expected outcome.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { caseDirs, compare, loadCase, makeScratch, runCase } from './vectors.js';

const cases = caseDirs();
const scratch = makeScratch();
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('conformance vectors', { skip: cases.length === 0 && 'tests/vectors/cases is not present' }, () => {
  for (const caseDir of cases) {
    const spec = loadCase(caseDir);
    // A case marked xfail documents a gap of the reference implementation; it is reported, not failed.
    test(path.basename(caseDir), { todo: spec.xfail || false }, () => {
      const problems = compare(caseDir, runCase(caseDir, scratch));
      assert.deepEqual(problems, [], problems.join('\n'));
    });
  }
});
