// The URL-fragment form of a session: it round-trips any text, and a damaged or foreign
// fragment is refused with a message instead of opening something else.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { decodeSession, encodeSession } from '../src/share.js';

const SESSION = {
  recipe:
    'metadata:\n  recipe_type: ptq\n' +
    "  description: 'FP8 — für alle 🚀'\nquantize:\n  quant_cfg: []\n",
  snippets: [
    { name: 'my/fp8', text: 'num_bits: e4m3\naxis:\n' },
    { name: 'empty', text: '' },
  ],
  open: 'my/fp8',
};

describe('sessions in the URL fragment', () => {
  test('a session comes back as it was, whatever its characters', async () => {
    const fragment = await encodeSession(SESSION);
    assert.match(fragment, /^s1=[A-Za-z0-9_-]+$/);
    assert.deepEqual(await decodeSession(fragment), SESSION);
    assert.deepEqual(await decodeSession(`#${fragment}`), SESSION);
  });

  test('a large recipe is compressed', async () => {
    const entry = "  - quantizer_name: '*weight_quantizer'\n    enable: false\n";
    const recipe = `quant_cfg:\n${entry.repeat(500)}`;
    const fragment = await encodeSession({ recipe, snippets: [] });
    assert.ok(
      fragment.length < recipe.length / 20,
      `${fragment.length} characters for ${recipe.length}`,
    );
    assert.equal((await decodeSession(fragment)).recipe, recipe);
  });

  test('no session in the fragment: null', async () => {
    assert.equal(await decodeSession(''), null);
    assert.equal(await decodeSession('#'), null);
    assert.equal(await decodeSession('#quick-start'), null);
  });

  test('a fragment cut short or changed is refused', async () => {
    const fragment = await encodeSession(SESSION);
    for (const damaged of [
      fragment.slice(0, -6),
      `${fragment.slice(0, 12)}AAAA${fragment.slice(16)}`,
      's1=%%%',
      's1=',
    ]) {
      await assert.rejects(decodeSession(damaged), /the link is damaged/, damaged);
    }
  });

  test('well-formed data that is not a session is refused', async () => {
    const encode = async (value) => {
      const bytes = new TextEncoder().encode(JSON.stringify(value));
      const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate-raw'));
      const compressed = Buffer.from(await new Response(stream).arrayBuffer());
      return `s1=${compressed.toString('base64url')}`;
    };
    for (const value of [
      [],
      { recipe: 1, snippets: [] },
      { recipe: '', snippets: {} },
      { recipe: '', snippets: [['only-a-name']] },
      { recipe: '', snippets: [['name', 7]] },
    ]) {
      await assert.rejects(
        decodeSession(await encode(value)),
        /does not hold a playground session/,
        JSON.stringify(value),
      );
    }
    assert.deepEqual(await decodeSession(await encode({ recipe: 'a: 1\n', snippets: [] })), {
      recipe: 'a: 1\n',
      snippets: [],
      open: null,
    });
  });
});
