// The `qrecipe` command line (Node). Same commands, output and exit codes as the Python one:
// 0 success, 1 invalid input (a recipe problem), 2 usage error.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import nodePath from 'node:path';
import os from 'node:os';
import { pyRepr } from './core/show.js';
import {
  RecipeError,
  canonicalJson,
  fingerprint,
  isFlatFile,
  listRecipes,
  loadFlat,
  prettyJson,
  resolve,
  schemaText,
  validateFile,
} from './node.js';
import { statKind } from './statkind.js';

export const EXIT_OK = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

const VERSION = createRequire(import.meta.url)('../package.json').version;

const USAGE = {
  '': 'usage: qrecipe [-h] [--version] COMMAND ...',
  validate: 'usage: qrecipe validate [-h] [--format {text,json,github}] [--path DIR] FILE [FILE ...]',
  resolve: 'usage: qrecipe resolve [-h] [-o OUT] [--canonical] [--provenance] [--path DIR] RECIPE',
  list: 'usage: qrecipe list [-h] [--format {text,json}] [--path DIR]',
  schema: 'usage: qrecipe schema [-h] NAME',
  fingerprint: 'usage: qrecipe fingerprint [-h] [--path DIR] FILE',
};

const HELP = `${USAGE['']}

Validate, resolve and inspect model-quantization recipes.

commands:
  validate     check recipes, snippets and flat JSON files
  resolve      print the flat canonical JSON of a recipe
  list         list the built-in recipes (and those under --path)
  schema       print a published JSON Schema
  fingerprint  print the fingerprint of a recipe or flat JSON file

search roots:
  Names are looked up in the built-in library, then each --path DIR, then the directories
  in $QRECIPE_PATH, then the current directory. A snippet's imports are looked up first in
  the root that holds it.

exit status:
  0 valid / done, 1 a recipe is invalid, 2 usage error (bad option, unreadable output).
`;

class UsageError extends Error {
  constructor(command, message) {
    super(message);
    this.command = command;
  }
}

const OPTIONS = {
  validate: { '--format': { choices: ['text', 'json', 'github'], default: 'text' }, '--path': { append: true } },
  resolve: {
    '-o': { name: 'output' },
    '--output': { name: 'output' },
    '--canonical': { flag: true },
    '--provenance': { flag: true },
    '--path': { append: true },
  },
  list: { '--format': { choices: ['text', 'json'], default: 'text' }, '--path': { append: true } },
  schema: {},
  fingerprint: { '--path': { append: true } },
};
const POSITIONALS = {
  validate: { name: 'files', min: 1, max: Infinity, metavar: 'FILE' },
  resolve: { name: 'recipe', min: 1, max: 1, metavar: 'RECIPE' },
  list: { name: 'none', min: 0, max: 0 },
  schema: { name: 'name', min: 1, max: 1, metavar: 'NAME', choices: ['catalog', 'flat', 'recipe'] },
  fingerprint: { name: 'file', min: 1, max: 1, metavar: 'FILE' },
};

function parseArguments(argv) {
  const [command, ...rest] = argv;
  if (command === '--version') return { command: 'version' };
  if (command === undefined) throw new UsageError('', 'the following arguments are required: COMMAND');
  if (command === '-h' || command === '--help') return { command: 'help' };
  if (!Object.prototype.hasOwnProperty.call(OPTIONS, command)) {
    const choices = Object.keys(OPTIONS).map((c) => `'${c}'`).join(', ');
    throw new UsageError('', `argument COMMAND: invalid choice: '${command}' (choose from ${choices})`);
  }
  const specs = OPTIONS[command];
  const args = { command, path: [], positionals: [] };
  for (const [flag, spec] of Object.entries(specs)) {
    const name = spec.name || flag.replace(/^-+/, '');
    if (spec.flag) args[name] = false;
    else if (spec.default !== undefined) args[name] = spec.default;
    else if (!spec.append) args[name] = args[name] ?? null;
  }
  let onlyPositionals = false;
  for (let i = 0; i < rest.length; i++) {
    let token = rest[i];
    if (onlyPositionals || !token.startsWith('-') || token === '-') {
      args.positionals.push(token);
      continue;
    }
    if (token === '--') {
      onlyPositionals = true;
      continue;
    }
    if (token === '-h' || token === '--help') return { command: 'help', topic: command };
    let value = null;
    const equals = token.indexOf('=');
    if (token.startsWith('--') && equals > 0) {
      value = token.slice(equals + 1);
      token = token.slice(0, equals);
    }
    const spec = specs[token];
    if (!spec) throw new UsageError(command, `unrecognized arguments: ${rest[i]}`);
    const name = spec.name || token.replace(/^-+/, '');
    if (spec.flag) {
      args[name] = true;
      continue;
    }
    if (value === null) {
      if (i + 1 >= rest.length || (rest[i + 1].startsWith('-') && rest[i + 1] !== '-')) {
        throw new UsageError(command, `argument ${token}: expected one argument`);
      }
      value = rest[++i];
    }
    if (spec.choices && !spec.choices.includes(value)) {
      const choices = spec.choices.map((c) => `'${c}'`).join(', ');
      throw new UsageError(command, `argument ${token}: invalid choice: '${value}' (choose from ${choices})`);
    }
    if (spec.append) args[name].push(value);
    else args[name] = value;
  }
  const positional = POSITIONALS[command];
  if (args.positionals.length < positional.min) {
    throw new UsageError(command, `the following arguments are required: ${positional.metavar}`);
  }
  if (args.positionals.length > positional.max) {
    throw new UsageError(command, `unrecognized arguments: ${args.positionals.slice(positional.max).join(' ')}`);
  }
  if (positional.choices && !positional.choices.includes(args.positionals[0])) {
    const choices = positional.choices.map((c) => `'${c}'`).join(', ');
    throw new UsageError(command, `argument NAME: invalid choice: '${args.positionals[0]}' (choose from ${choices})`);
  }
  args[positional.name] = positional.max === 1 ? args.positionals[0] : args.positionals;
  return args;
}

function report(diagnostics, format, target, io) {
  for (const d of diagnostics) {
    if (format === 'github') {
      const props = [`file=${d.file || target}`];
      if (d.line) props.push(`line=${d.line}`);
      if (d.column) props.push(`col=${d.column}`);
      io.out(`::error ${props.join(',')}::${d.message}${d.hint ? ` (${d.hint})` : ''}\n`);
    } else {
      io.err(`${d.format()}\n`);
    }
  }
}

// ------------------------------------------------------------------ targets
// A directory stands for every *.yaml, *.yml and *.flat.json below it (a directory recipe below
// it, one holding a quantize.yml, is one target); `-` is one document read from standard input.
const STDIN = '-';
const STDIN_NAME = '<stdin>';
const TARGET_SUFFIXES = ['.yaml', '.yml', '.flat.json'];

function isDirectory(path) {
  return statKind(path) === 'dir';
}

function isDirectoryRecipe(path) {
  return ['quantize.yml', 'quantize.yaml'].some((name) => statKind(nodePath.join(path, name)) === 'file');
}

function expandTargets(files, cwd) {
  const targets = [];
  for (const argument of files) {
    const path = nodePath.resolve(cwd, argument);
    if (argument === STDIN || !isDirectory(path) || isDirectoryRecipe(path)) {
      targets.push(argument);
      continue;
    }
    const found = [];
    const recipes = [];
    // Links count as what they lead to (as in Python); links to directories are not followed below them.
    const walk = (directory, prefix) => {
      let entries;
      try {
        entries = fs.readdirSync(directory, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
        const child = nodePath.join(directory, entry.name);
        const link = entry.isSymbolicLink();
        const kind = link ? statKind(child) : entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : null;
        if (kind === 'dir') {
          if (isDirectoryRecipe(child)) recipes.push(relative);
          if (!link) walk(child, relative);
        } else if (kind === 'file' && TARGET_SUFFIXES.some((suffix) => entry.name.endsWith(suffix))) {
          found.push(relative);
        }
      }
    };
    walk(path, '');
    const kept = found.filter((file) => !recipes.some((recipe) => file.startsWith(`${recipe}/`)));
    const shown = argument.replace(/\/+$/, '');
    for (const relative of [...kept, ...recipes].sort(byCodePoint)) {
      if (!shown && argument.startsWith('/')) targets.push(`/${relative}`);
      else targets.push(shown === '' || shown === '.' ? relative : `${shown}/${relative}`);
    }
  }
  return targets;
}

function byCodePoint(a, b) {
  const left = [...a].map((c) => c.codePointAt(0));
  const right = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(left.length, right.length); i++) if (left[i] !== right[i]) return left[i] - right[i];
  return left.length - right.length;
}

/** Standard input as a temporary file; `rename` names it `<stdin>` in a diagnostic. */
function withStdinFile(callback) {
  const text = fs.readFileSync(0, 'utf8');
  let flat = false;
  if (text.trimStart().startsWith('{')) {
    try {
      const document = JSON.parse(text);
      flat = document !== null && typeof document === 'object' && !Array.isArray(document) && 'fingerprint' in document;
    } catch {
      flat = false;
    }
  }
  const folder = fs.realpathSync(fs.mkdtempSync(nodePath.join(os.tmpdir(), 'qrecipe-stdin-')));
  const file = nodePath.join(folder, flat ? 'stdin.flat.json' : 'stdin.yaml');
  fs.writeFileSync(file, text);
  // A file outside every search root is named by its path, or as `folder:name`.
  const shown = [file, `${folder}:${nodePath.basename(file)}`];
  const named = (value) =>
    value == null ? value : shown.reduce((text, name) => text.replaceAll(name, STDIN_NAME), value.replaceAll(`${folder} first, then: `, ''));
  const rename = (d) =>
    Object.assign(Object.create(Object.getPrototypeOf(d)), d, {
      message: named(d.message),
      file: named(d.file),
      hint: named(d.hint),
      chain: d.chain.map(named),
    });
  try {
    return callback(file, rename);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

function validateOne(file, args, io, notices) {
  if (file !== STDIN) {
    return validateFile(file, { path: args.path, cwd: io.cwd, onNotice: (m) => notices.push(m) });
  }
  return withStdinFile((temporary, rename) =>
    validateFile(temporary, { path: args.path, cwd: io.cwd, onNotice: (m) => notices.push(m) }).map(rename),
  );
}

function validateCommand(args, io) {
  const results = [];
  let failed = false;
  for (const target of expandTargets(args.files, io.cwd)) {
    const file = target === STDIN ? STDIN_NAME : target;
    const notices = [];
    const diagnostics = validateOne(target, args, io, notices);
    for (const notice of notices) io.err(`${file}: notice: ${notice}\n`);
    failed = failed || diagnostics.length > 0;
    results.push({ file, valid: diagnostics.length === 0, errors: diagnostics.map((d) => d.toJSON()) });
    if (args.format !== 'json') {
      report(diagnostics, args.format, file, io);
      if (!diagnostics.length && args.format === 'text') io.out(`${file}: ok\n`);
    }
  }
  if (args.format === 'json') {
    io.out(`${JSON.stringify({ valid: !failed, results }, null, 2)}\n`);
  } else if (failed && args.format === 'text') {
    const count = results.reduce((sum, r) => sum + r.errors.length, 0);
    const bad = results.filter((r) => !r.valid).length;
    io.err(`${count} problem(s) in ${bad} of ${results.length} file(s)\n`);
  }
  return failed ? EXIT_INVALID : EXIT_OK;
}

function write(data, output, io) {
  if (output === null) {
    io.out(data);
    return EXIT_OK;
  }
  try {
    fs.writeFileSync(nodePath.resolve(io.cwd, output), data);
  } catch (error) {
    io.err(`qrecipe: cannot write ${output}: ${strerror(error)}\n`);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

function strerror(error) {
  const known = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EISDIR: 'Is a directory',
    ENOTDIR: 'Not a directory',
  };
  return known[error.code] || error.message;
}

function withNotices(io) {
  return (message) => io.err(`notice: ${message}\n`);
}

function resolveCommand(args, io) {
  const flat = resolve(args.recipe, {
    path: args.path,
    cwd: io.cwd,
    provenance: args.provenance,
    onNotice: withNotices(io),
  });
  return write(args.canonical ? canonicalJson(flat) : prettyJson(flat), args.output, io);
}

function listCommand(args, io) {
  const recipes = listRecipes({ path: args.path, cwd: io.cwd });
  if (args.format === 'json') {
    const rows = recipes.map((r) => ({ name: r.name, root: r.root, description: r.description }));
    io.out(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT_OK;
  }
  const width = Math.max(0, ...recipes.map((r) => r.name.length));
  const room = Math.max(LINE_WIDTH - width - 2, MIN_DESCRIPTION_WIDTH);
  let root = null;
  for (const recipe of recipes) {
    if (recipe.root !== root && (root !== null || recipe.root !== 'builtin')) {
      io.out(root !== null ? `\n${recipe.root}:\n` : `${recipe.root}:\n`);
    }
    root = recipe.root;
    const lines = wrap(recipe.description, room);
    if (!lines.length) lines.push('');
    io.out(`${`${recipe.name.padEnd(width)}  ${lines[0]}`.trimEnd()}\n`);
    for (const line of lines.slice(1)) io.out(`${''.padEnd(width)}  ${line}\n`);
  }
  return EXIT_OK;
}

// Descriptions wrap so that `list` lines stay within LINE_WIDTH characters, as in Python.
const LINE_WIDTH = 100;
const MIN_DESCRIPTION_WIDTH = 40;

/** `text` in lines of at most `width` characters, broken at spaces only. */
function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function fingerprintCommand(args, io) {
  const flat = isFlatFile(args.file, { cwd: io.cwd })
    ? loadFlat(args.file, { cwd: io.cwd })
    : resolve(args.file, { path: args.path, cwd: io.cwd, onNotice: withNotices(io) });
  io.out(`${fingerprint(flat)}\n`);
  return EXIT_OK;
}

const COMMANDS = {
  validate: validateCommand,
  resolve: resolveCommand,
  list: listCommand,
  schema: (args, io) => {
    io.out(schemaText(args.name));
    return EXIT_OK;
  },
  fingerprint: fingerprintCommand,
};

/**
 * Run the command line; returns the exit status.
 * @param {string[]} argv arguments after the program name
 * @param {{out?: (text: string) => void, err?: (text: string) => void, cwd?: string}} [io]
 */
export function main(argv, io = {}) {
  const streams = {
    out: io.out || ((text) => process.stdout.write(text)),
    err: io.err || ((text) => process.stderr.write(text)),
    cwd: io.cwd || process.cwd(),
  };
  let args;
  try {
    args = parseArguments(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    streams.err(`${USAGE[error.command]}\nqrecipe${error.command ? ` ${error.command}` : ''}: error: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (args.command === 'help') {
    streams.out(args.topic ? `${USAGE[args.topic]}\n` : HELP);
    return EXIT_OK;
  }
  if (args.command === 'version') {
    streams.out(`qrecipe ${VERSION}\n`);
    return EXIT_OK;
  }
  for (const root of args.path) {
    const stats = fs.statSync(nodePath.resolve(streams.cwd, root), { throwIfNoEntry: false });
    if (!stats || !stats.isDirectory()) {
      streams.err(`qrecipe: error: --path ${pyRepr(root)} is not a directory\n`);
      return EXIT_USAGE;
    }
  }
  try {
    return COMMANDS[args.command](args, streams);
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
    for (const diagnostic of error.diagnostics) streams.err(`${diagnostic.format()}\n`);
    return EXIT_INVALID;
  }
}
