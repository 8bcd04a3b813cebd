#!/usr/bin/env node
// Bundle the recipe playground into OUTDIR (default: dist/): playground.js and playground.css,
// with nothing loaded from anywhere else at run time, so the page works offline, from file://
// and from any static host. The documentation build (docs/gen/playground_hook.py) runs this and
// publishes the files beside docs/playground.md.
//
//   node build.mjs [--outdir DIR] [--metafile]
//
// The Monaco editor needs web workers. A worker cannot be started from a file:// URL, so the
// worker is bundled first and its code carried inside playground.js as text; the page starts it
// from a blob: URL.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import * as esbuild from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const JS_PACKAGE = path.join(REPO, 'js');

function parseArguments(argv) {
  const options = { outdir: path.join(HERE, 'dist'), metafile: false };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--outdir' && i + 1 < argv.length)
      options.outdir = path.resolve(argv[(i += 1)]);
    else if (argv[i] === '--metafile') options.metafile = true;
    else
      throw new Error(`usage: node build.mjs [--outdir DIR] [--metafile]; unexpected ${argv[i]}`);
  }
  return options;
}

/** The JS package's generated modules (schemas, built-in library) from the Python package. */
function copyPackageAssets() {
  const result = spawnSync(process.execPath, [path.join(JS_PACKAGE, 'scripts', 'copy-assets.js')], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`copy-assets failed:\n${result.stdout}${result.stderr}`);
}

// Formatting is not offered (recipes are formatted by hand, and the resolver, not the editor,
// decides what a recipe means), so the YAML worker is built without Prettier: 450 kB less.
const withoutPrettier = {
  name: 'without-prettier',
  setup(build) {
    build.onResolve({ filter: /^prettier(\/|$)/ }, (args) => ({
      path: args.path,
      namespace: 'no-prettier',
    }));
    build.onLoad({ filter: /.*/, namespace: 'no-prettier' }, () => ({
      contents:
        'export function format() {\n' +
        '  throw new Error("formatting is not part of the playground");\n' +
        '}\n',
      loader: 'js',
    }));
  },
};

const COMMON = {
  bundle: true,
  minify: true,
  legalComments: 'none',
  target: ['chrome111', 'firefox113', 'safari16.4'],
  logLevel: 'warning',
  // The JS package's core imports ajv and yaml; when js/node_modules is not installed they come
  // from this package, which pins the same versions.
  nodePaths: [path.join(HERE, 'node_modules')],
  alias: {
    'qrecipe/core': path.join(JS_PACKAGE, 'src', 'core', 'index.js'),
    'qrecipe/recipes/bundle.js': path.join(JS_PACKAGE, 'recipes', 'bundle.js'),
  },
};

async function buildWorker() {
  const result = await esbuild.build({
    ...COMMON,
    entryPoints: [path.join(HERE, 'src', 'yaml.worker.js')],
    format: 'iife',
    write: false,
    outdir: 'worker',
    plugins: [withoutPrettier],
    metafile: true,
  });
  return { code: result.outputFiles[0].text, metafile: result.metafile };
}

async function buildPage(workerCode, outdir) {
  const workerModule = {
    name: 'embedded-worker',
    setup(build) {
      build.onResolve({ filter: /^embedded:yaml-worker$/ }, () => ({
        path: 'yaml-worker',
        namespace: 'embedded',
      }));
      build.onLoad({ filter: /.*/, namespace: 'embedded' }, () => ({
        contents: `export default ${JSON.stringify(workerCode)};\n`,
        loader: 'js',
      }));
    },
  };
  return esbuild.build({
    ...COMMON,
    entryPoints: { playground: path.join(HERE, 'src', 'main.js') },
    format: 'iife',
    outdir,
    loader: { '.ttf': 'dataurl' },
    plugins: [workerModule],
    metafile: true,
  });
}

const kib = (bytes) => (bytes / 1024).toFixed(0);

function sizeOf(file) {
  const bytes = fs.readFileSync(file);
  return { bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  copyPackageAssets();
  fs.rmSync(options.outdir, { recursive: true, force: true });
  fs.mkdirSync(options.outdir, { recursive: true });
  const worker = await buildWorker();
  const page = await buildPage(worker.code, options.outdir);
  const sizes = {};
  for (const name of ['playground.js', 'playground.css'])
    sizes[name] = sizeOf(path.join(options.outdir, name));
  sizes['of which the embedded worker'] = {
    bytes: Buffer.byteLength(worker.code),
    gzip: gzipSync(worker.code, { level: 9 }).length,
  };
  if (options.metafile) {
    fs.writeFileSync(path.join(options.outdir, 'meta.page.json'), JSON.stringify(page.metafile));
    fs.writeFileSync(
      path.join(options.outdir, 'meta.worker.json'),
      JSON.stringify(worker.metafile),
    );
  }
  const lines = Object.entries(sizes).map(
    ([name, size]) => `  ${name}: ${kib(size.bytes)} KiB (${kib(size.gzip)} KiB gzip)`,
  );
  console.log(`playground built into ${options.outdir}\n${lines.join('\n')}`);
}

main().catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
