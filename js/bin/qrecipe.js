#!/usr/bin/env node
import { main } from '../src/cli.js';

process.stdout.on('error', (error) => {
  // A closed pipe (`qrecipe resolve x | head`) is not a failure.
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
process.exitCode = main(process.argv.slice(2));
