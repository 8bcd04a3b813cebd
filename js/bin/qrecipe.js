#!/usr/bin/env node
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
if (argv[0] === '--version') {
  // Answered as the command line answers it, before its schemas and validators are loaded.
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`qrecipe ${version}\n`);
} else {
  const { main } = await import('../src/cli.js');
  process.stdout.on('error', (error) => {
    // A closed pipe (`qrecipe resolve x | head`) is not a failure.
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = main(argv);
}
