// The built playground page in a real headless Chromium (Debian's `chromium`), driven with
// puppeteer-core: typing, completion, built-in recipes and shared links, each checked against
// the Python command line. Run `make docs` first (`make playgroundtest` does); screenshots and
// the measured page size go to test-artifacts/.
//
// Environment: QRECIPE_SITE (the built site, default ../site), CHROMIUM (the browser, default
// Debian's /usr/bin/chromium), QRECIPE_PYTHON (a Python with qrecipe, default ../.venv/bin/python).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import puppeteer from 'puppeteer-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const SITE = path.resolve(process.env.QRECIPE_SITE || path.join(REPO, 'site'));
const PAGE = path.join(SITE, 'playground', 'index.html');
const PAGE_URL = pathToFileURL(PAGE).href;
const ARTIFACTS = path.join(HERE, '..', 'test-artifacts');
const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/lib/chromium/chromium'];
const PYTHON_CANDIDATES = [path.join(REPO, '.venv', 'bin', 'python'), 'python3'];
const DEFAULT_RECIPE = 'general/ptq/fp8_default-kv_fp8';
const BUILTINS = [
  'general/ptq/nvfp4_default-kv_fp8',
  'general/ptq/int4_blockwise_weight_only',
  'huggingface/bert/ptq/fp8_qkvo-nvfp4_mlp',
];

function findChromium() {
  const candidates = process.env.CHROMIUM ? [process.env.CHROMIUM] : CHROMIUM_CANDIDATES;
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) {
    throw new Error(
      `no Chromium at ${candidates.join(' or ')}: ` +
        "install Debian's package (apt-get install -y chromium)",
    );
  }
  return found;
}

function findPython() {
  const candidates = process.env.QRECIPE_PYTHON ? [process.env.QRECIPE_PYTHON] : PYTHON_CANDIDATES;
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import qrecipe.cli'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  throw new Error(`no Python with qrecipe among ${candidates.join(', ')}: set QRECIPE_PYTHON`);
}

let python;
let browser;
let work;

/** Run the Python command line (`python -m qrecipe ARGS`) in `cwd`. */
function qrecipe(args, cwd = work) {
  const env = { ...process.env };
  delete env.QRECIPE_PATH;
  const result = spawnSync(python, ['-m', 'qrecipe', ...args], { cwd, env, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Write a playground session as files, the way check.js lays them out. */
function writeSession(directory, session) {
  fs.rmSync(directory, { recursive: true, force: true });
  fs.mkdirSync(directory, { recursive: true });
  fs.writeFileSync(path.join(directory, 'recipe.yaml'), session.recipe);
  for (const snippet of session.snippets) {
    const file = path.join(directory, 'snippets', `${snippet.name}.yaml`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, snippet.text);
  }
}

/**
 * A new tab on the page; records every request it makes and every error of the playground's
 * own script (the site's search does not work from file:// and says so: not ours).
 */
async function openPage(url = PAGE_URL, { context = null } = {}) {
  const page = await (context || browser).newPage();
  await page.setViewport({ width: 1440, height: 1000 });
  const record = { requests: [], errors: [] };
  page.on('request', (request) => record.requests.push(request.url()));
  page.on('pageerror', (error) => {
    if (/assets\/playground\//.test(error.stack || '') || !/search/.test(error.message))
      record.errors.push(error.message);
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && !/search_index|ERR_FILE_NOT_FOUND/.test(message.text())) {
      record.errors.push(message.text());
    }
  });
  await page.goto(url);
  await page.waitForSelector('#qrecipe-playground[data-loaded="true"]', { timeout: 30_000 });
  return { page, record };
}

async function inspect(page) {
  return page.evaluate(() => window.qrecipePlayground.inspect());
}

/** Wait until the page has checked what it holds now (the check is debounced). */
async function settled(page, previousChecks) {
  await page.waitForFunction(
    (before) => {
      const playground = window.qrecipePlayground;
      return playground.checkCount > before && !playground.pending;
    },
    { timeout: 10_000 },
    previousChecks,
  );
  return inspect(page);
}

/** Replace the text of the editor's open tab by pasting `text` (typed keys are auto-indented). */
async function pasteInto(page, text) {
  await page.click('.qp-editor .view-lines');
  await pressControl(page, 'KeyA');
  await page.$eval(
    '.qp-editor textarea',
    (area, pasted) => {
      const data = new DataTransfer();
      data.setData('text/plain', pasted);
      area.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
      );
    },
    text,
  );
  await page.waitForFunction(
    (pasted) => window.qrecipePlayground.editor.getValue() === pasted,
    { timeout: 5_000 },
    text,
  );
}

async function pressControl(page, key) {
  await page.keyboard.down('Control');
  await page.keyboard.press(key);
  await page.keyboard.up('Control');
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

before(async () => {
  assert.ok(fs.existsSync(PAGE), `${PAGE} not found: build the site first (make docs)`);
  python = findPython();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'qrecipe-playground-'));
  browser = await puppeteer.launch({
    executablePath: findChromium(),
    headless: true,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the playground page', () => {
  test('opens on a built-in recipe, resolved, and loads nothing from elsewhere', async () => {
    const { page, record } = await openPage();
    const state = await inspect(page);
    const builtinText = fs.readFileSync(
      path.join(REPO, 'src', 'qrecipe', 'recipes', `${DEFAULT_RECIPE}.yaml`),
      'utf8',
    );
    assert.equal(state.session.recipe, builtinText);
    assert.deepEqual(state.session.snippets, []);
    const resolved = qrecipe(['resolve', DEFAULT_RECIPE]);
    assert.equal(resolved.status, 0, resolved.stderr);
    assert.equal(state.flatText, resolved.stdout);
    assert.equal(await page.$eval('.qp-flat', (element) => element.textContent), resolved.stdout);
    assert.equal(
      await page.$eval('.qp-fingerprint', (element) => element.textContent),
      JSON.parse(resolved.stdout).fingerprint,
    );
    assert.match(
      await page.$eval('.qp-summary', (element) => element.textContent),
      /^No problems in 1 file\(s\)$/,
    );
    assert.deepEqual(record.errors, []);

    // Everything comes from the built site (or from the page itself): no CDN, no server.
    const outside = record.requests.filter(
      (url) => !/^(data|blob):/.test(url) && !url.startsWith(pathToFileURL(SITE).href),
    );
    assert.deepEqual(outside, []);
    const files = [...new Set(record.requests.filter((url) => url.startsWith('file:')))].map(
      (url) => fileURLToPath(url.split('#')[0]),
    );
    const sizes = Object.fromEntries(
      files
        .filter((file) => fs.existsSync(file))
        .map((file) => [path.relative(SITE, file), fs.statSync(file).size]),
    );
    const total = Object.values(sizes).reduce((sum, size) => sum + size, 0);
    fs.writeFileSync(
      path.join(ARTIFACTS, 'page-size.json'),
      `${JSON.stringify({ total, files: sizes }, null, 2)}\n`,
    );
    console.log(
      `playground page: ${files.length} files, ${(total / 1024 / 1024).toFixed(2)} MiB in all`,
    );
    assert.ok(
      sizes['assets/playground/playground.js'] > 0 && sizes['assets/playground/playground.css'] > 0,
    );
    await screenshot(page, '1-opened');
    await page.close();
  });

  test('a misspelt key: its line and did-you-mean hint, as qrecipe validate says', async () => {
    const { page } = await openPage();
    const recipe = [
      'imports:',
      '  fp8: configs/numerics/fp8',
      'metadata:',
      '  recipe_type: ptq',
      '  description: FP8 weights.',
      'quantize:',
      '  algorithm: max',
      '  quant_cfg:',
      "    - quantizer_name: '*'",
      '      enable: false',
      "    - quantizer_name: '*weight_quantizer'",
      '      cfg:',
      '        $import: fp8',
      "    - quantizer_name: '*lm_head*'",
      '',
    ].join('\n');
    let state = await inspect(page);
    await pasteInto(page, recipe);
    // The cursor is at the start of the last line: type the last key there, misspelt.
    await page.keyboard.type('      enabel: false');
    state = await settled(page, state.checks);
    assert.equal(state.session.recipe, `${recipe}      enabel: false`);

    const problems = await page.$$eval('.qp-problem', (items) =>
      items.map((item) => ({
        line: item.dataset.line,
        column: item.dataset.column,
        code: item.dataset.code,
        text: item.innerText,
      })),
    );
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.deepEqual(
      { line: problems[0].line, column: problems[0].column, code: problems[0].code },
      { line: '15', column: '7', code: 'schema' },
    );
    assert.match(
      problems[0].text,
      /recipe\.yaml:15:7: unknown key "enabel" \(at \/quantize\/quant_cfg\/2\/enabel\)/,
    );
    assert.match(problems[0].text, /hint: did you mean "enable"\?/);
    // In the editor: a marker on that line, drawn as a squiggle.
    assert.deepEqual(
      state.markers['recipe.yaml'].map(({ line, column }) => [line, column]),
      [[15, 7]],
    );
    assert.match(state.markers['recipe.yaml'][0].message, /did you mean "enable"\?/);
    await page.waitForSelector('.qp-editor .squiggly-error');
    assert.match(await page.$eval('.qp-fingerprint', (element) => element.textContent), /^—$/);

    // The very problems of the command line, field by field.
    writeSession(path.join(work, 'typed'), state.session);
    const cli = qrecipe(['validate', '--format', 'json', 'recipe.yaml'], path.join(work, 'typed'));
    assert.equal(cli.status, 1, cli.stderr);
    assert.deepEqual(
      state.results,
      JSON.parse(cli.stdout).results.map(({ file, errors }) => ({ file, errors })),
    );
    await screenshot(page, '2-misspelt-key');

    // Fixing the key by typing clears the problem and resolves the recipe.
    await page.evaluate(() => {
      const { editor } = window.qrecipePlayground;
      editor.setSelection({
        startLineNumber: 15,
        startColumn: 7,
        endLineNumber: 15,
        endColumn: 13,
      });
      editor.focus();
    });
    await page.keyboard.type('enable');
    state = await settled(page, state.checks);
    assert.deepEqual(state.markers['recipe.yaml'], []);
    writeSession(path.join(work, 'typed'), state.session);
    const fingerprint = qrecipe(['fingerprint', 'recipe.yaml'], path.join(work, 'typed'));
    assert.equal(fingerprint.status, 0, fingerprint.stderr);
    assert.equal(state.fingerprint, fingerprint.stdout.trim());
    await page.close();
  });

  test('completion of num_bits in a cfg, hover, the ready-made entries', async () => {
    const { page } = await openPage();
    const recipe = [
      'metadata:',
      '  recipe_type: ptq',
      'quantize:',
      '  algorithm: max',
      '  quant_cfg:',
      "    - quantizer_name: '*weight_quantizer'",
      '      cfg:',
      '        axis:',
      '        ',
    ].join('\n');
    await pasteInto(page, recipe);
    // The cursor is at the end: the empty line inside cfg.
    await pressControl(page, 'Space');
    await page.waitForSelector('.suggest-widget.visible .monaco-list-row[aria-label*="num_bits"]', {
      timeout: 15_000,
    });
    await page.keyboard.type('num_b');
    await page.waitForSelector(
      '.suggest-widget.visible .monaco-list-row.focused[aria-label*="num_bits"]',
    );
    // The description from the schema, in the details of the focused item (Ctrl+Space shows them).
    const described = () =>
      /format written ExMy/.test(document.querySelector('.suggest-details')?.textContent || '');
    if (!(await page.evaluate(described))) await pressControl(page, 'Space');
    await page.waitForFunction(described, { timeout: 10_000 });
    await screenshot(page, '3-completion-num_bits');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() =>
      /\n {8}num_bits: ?/.test(window.qrecipePlayground.session().recipe),
    );

    // Hovering a key shows its documentation from the schema.
    await page.keyboard.press('Escape');
    const point = await page.evaluate(() => {
      const { editor } = window.qrecipePlayground;
      const at = editor.getScrolledVisiblePosition({ lineNumber: 6, column: 10 });
      const box = editor.getDomNode().getBoundingClientRect();
      return { x: box.left + at.left, y: box.top + at.top + at.height / 2 };
    });
    await page.mouse.move(point.x, point.y);
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('.monaco-hover:not(.hidden)')].some((hover) =>
          /Quantizer name pattern.*Wildcard pattern/s.test(hover.textContent),
        ),
      { timeout: 10_000 },
    );
    await screenshot(page, '3-hover');
    await page.mouse.move(1, 1);

    // A new quant_cfg entry: the schema's ready-made entries (defaultSnippets) are offered.
    await pasteInto(page, `${recipe}num_bits: e4m3\n    - `);
    await pressControl(page, 'Space');
    await page.waitForSelector(
      '.suggest-widget.visible .monaco-list-row[aria-label*="FP8 weights"]',
      { timeout: 15_000 },
    );
    await page.keyboard.type('NVFP4');
    await page.waitForSelector(
      '.suggest-widget.visible .monaco-list-row.focused[aria-label*="NVFP4 block"]',
    );
    await screenshot(page, '3-completion-snippets');
    await page.keyboard.press('Enter');
    const inserted = await page.waitForFunction(
      () => {
        const text = window.qrecipePlayground.session().recipe;
        return /e2m1/.test(text) && text;
      },
      { timeout: 5_000 },
    );
    assert.match(
      await inserted.jsonValue(),
      /- quantizer_name: '\*mlp\*weight_quantizer'\n {6}cfg:\n {8}num_bits: e2m1\n {8}block_sizes:/,
    );
    await page.close();
  });

  test('three built-ins from the menu: the fingerprints of qrecipe fingerprint', async () => {
    const { page } = await openPage();
    for (const name of BUILTINS) {
      const before = await inspect(page);
      await page.select('.qp-picker', name);
      const state = await settled(page, before.checks);
      const text = fs.readFileSync(
        path.join(REPO, 'src', 'qrecipe', 'recipes', `${name}.yaml`),
        'utf8',
      );
      assert.equal(state.session.recipe, text);
      const cli = qrecipe(['fingerprint', name]);
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(
        await page.$eval('.qp-fingerprint', (element) => element.textContent),
        cli.stdout.trim(),
        name,
      );
      assert.match(
        await page.$eval('.qp-description', (element) => element.textContent),
        new RegExp(`^Opened the built-in recipe ${name}: `),
      );
    }
    await screenshot(page, '4-builtin');
    await page.close();
  });

  test('a snippet tab on the search path; a shared link brings it all back', async () => {
    const { page } = await openPage();
    await page.type('.qp-snippet-name', 'my/fp8_rows');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.qp-tab[data-tab="my/fp8_rows"][aria-selected="true"]');
    let state = await inspect(page);
    await pasteInto(page, 'num_bits: e4m3\naxis: 0\n');
    state = await settled(page, state.checks);
    await page.click('.qp-tab[data-tab="recipe.yaml"]');
    const recipe = [
      'imports:',
      '  rows: my/fp8_rows',
      '  base_disable_all: configs/ptq/units/base_disable_all',
      'metadata:',
      '  recipe_type: ptq',
      '  description: FP8 per-row weights from a snippet of my own.',
      'quantize:',
      '  algorithm: max',
      '  quant_cfg:',
      '    - $import: base_disable_all',
      "    - quantizer_name: '*weight_quantizer'",
      '      cfg:',
      '        $import: rows',
      '',
    ].join('\n');
    await pasteInto(page, recipe);
    state = await settled(page, state.checks);
    assert.deepEqual(state.session, {
      recipe,
      snippets: [{ name: 'my/fp8_rows', text: 'num_bits: e4m3\naxis: 0\n' }],
      open: null,
    });
    assert.equal(
      await page.$eval('.qp-command', (element) => element.textContent),
      'qrecipe validate --path snippets recipe.yaml snippets/my/fp8_rows.yaml',
    );
    writeSession(path.join(work, 'shared'), state.session);
    const cli = qrecipe(
      ['fingerprint', '--path', 'snippets', 'recipe.yaml'],
      path.join(work, 'shared'),
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(state.fingerprint, cli.stdout.trim());

    // A problem in the snippet is shown in the snippet's tab, as the command line places it.
    await page.click('.qp-tab[data-tab="my/fp8_rows"]');
    await pasteInto(page, 'num_bits: e4m3\naxis: 0\nnarow_range: true\n');
    state = await settled(page, state.checks);
    assert.deepEqual(
      state.markers['my/fp8_rows'].map(({ line, column }) => [line, column]),
      [[3, 1]],
    );
    writeSession(path.join(work, 'shared'), state.session);
    const validated = qrecipe(
      [
        'validate',
        '--format',
        'json',
        '--path',
        'snippets',
        'recipe.yaml',
        'snippets/my/fp8_rows.yaml',
      ],
      path.join(work, 'shared'),
    );
    assert.deepEqual(
      state.results,
      JSON.parse(validated.stdout).results.map(({ file, errors }) => ({ file, errors })),
    );
    await screenshot(page, '5-snippet-problem');

    await page.click('.qp-share');
    const link = page.url();
    assert.match(link, /#s1=[A-Za-z0-9_-]+$/);
    // A fresh browser profile (nothing stored) opening the link gets the same session back.
    const context = await browser.createBrowserContext();
    const opened = await openPage(link, { context });
    const reopened = await inspect(opened.page);
    assert.deepEqual(reopened.session, state.session);
    assert.deepEqual(reopened.results, state.results);
    await screenshot(opened.page, '5-shared-link');
    await opened.page.reload();
    await opened.page.waitForSelector('#qrecipe-playground[data-loaded="true"]');
    assert.deepEqual((await inspect(opened.page)).session, state.session);
    assert.deepEqual(opened.record.errors, []);
    await context.close();
    await page.close();
  });

  test('served by a static web server it works the same, in the dark scheme too', async () => {
    const types = {
      '.html': 'text/html',
      '.js': 'text/javascript',
      '.css': 'text/css',
      '.json': 'application/json',
    };
    const server = http.createServer((request, response) => {
      const relative = decodeURIComponent(
        new URL(request.url, 'http://localhost').pathname,
      ).replace(/\/$/, '/index.html');
      const file = path.join(SITE, path.normalize(relative));
      if (!file.startsWith(SITE) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, {
        'content-type': types[path.extname(file)] || 'application/octet-stream',
      });
      response.end(fs.readFileSync(file));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${server.address().port}`;
      const { page, record } = await openPage(`${origin}/playground/`);
      const state = await inspect(page);
      assert.equal(
        state.fingerprint,
        JSON.parse(qrecipe(['resolve', DEFAULT_RECIPE]).stdout).fingerprint,
      );
      assert.deepEqual(
        record.requests.filter((url) => !url.startsWith(origin) && !/^(data|blob):/.test(url)),
        [],
      );
      // The site's light/dark toggle switches the editor's theme as well.
      await page.click('label[for="__palette_1"]');
      await page.waitForSelector('.qp-editor .monaco-editor.vs-dark');
      await pasteInto(page, 'metadata:\n  recipe_typ: ptq\n');
      await page.waitForSelector('.qp-editor .squiggly-error');
      await screenshot(page, '6-http-dark');
      assert.deepEqual(record.errors, []);
      await page.close();
    } finally {
      server.close();
    }
  });

  test('a damaged link says so and opens the default recipe', async () => {
    const { page, record } = await openPage(`${PAGE_URL}#s1=AAAA-not-a-session`);
    assert.match(
      await page.$eval('.qp-description', (element) => element.textContent),
      /^Could not open the shared recipe: the link is damaged/,
    );
    const state = await inspect(page);
    assert.equal(
      state.fingerprint,
      JSON.parse(qrecipe(['resolve', DEFAULT_RECIPE]).stdout).fingerprint,
    );
    assert.deepEqual(record.errors, []);
    await page.close();
  });
});
