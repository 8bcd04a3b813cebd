// Values quoted in messages as Python's repr quotes them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pyRepr } from '../src/core/show.js';

test('pyRepr escapes what Python repr escapes, in the same form', () => {
  // Expected texts are Python 3's repr of the same strings.
  const cases = [
    ['plain', "'plain'"],
    ["it's", '"it\'s"'],
    ['a\'b"c', "'a\\'b\"c'"],
    ['\ufeff\t\ufb01', "'\\ufeff\\t\ufb01'"], // a format character is escaped, a ligature kept
    ['\x00\x7f\xa0\xad', "'\\x00\\x7f\\xa0\\xad'"],
    ['\u0378', "'\\u0378'"], // unassigned
    ['\u2028\u3000 ', "'\\u2028\\u3000 '"], // separators other than the space
    ['\u{e0001}\u{1f600}', "'\\U000e0001\u{1f600}'"],
    ['\ud800', "'\\ud800'"], // a lone surrogate
  ];
  for (const [text, expected] of cases) assert.equal(pyRepr(text), expected, JSON.stringify(text));
});
