#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

const argv = process.argv.slice(2);
if (argv[0] === '--version') {
  // Answered as the command line answers it, before its schemas and validators are loaded.
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`qrecipe ${version}\n`);
} else {
  // Reading a large file, V8 doubles its young generation up to 16 MB a half while the nodes of
  // the file are alive, and keeps the memory: at its first size, validating a 1 MB snippet peaks
  // at about 85 MB instead of 107, in the same time (bench/agreement_bench.py).
  setFlagsFromString('--semi-space-growth-factor=1');
  const { main } = await import('../src/cli.js');
  process.stdout.on('error', (error) => {
    // A closed pipe (`qrecipe resolve x | head`) is not a failure.
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = main(argv);
}
