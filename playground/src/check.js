// Check and resolve a playground session with the qrecipe core, exactly as
//   qrecipe validate --path snippets recipe.yaml snippets/NAME.yaml ...
//   qrecipe resolve --path snippets recipe.yaml
// would in a directory holding the recipe and one file per snippet tab (without `--path` while
// there are no snippets: the command line refuses a search root that does not exist). Nothing
// here touches the page.

import {
  RecipeError,
  listRecipes,
  memoryHost,
  prettyJson,
  resolve,
  validateTarget,
} from 'qrecipe/core';
import { builtinRecipes } from 'qrecipe/recipes/bundle.js';

export const RECIPE_FILE = 'recipe.yaml';
/** The virtual search path holding the snippet tabs (the `--path` directory). */
export const SNIPPET_DIR = 'snippets';
const WORK_DIR = '/project';
const BUILTIN_PREFIX = '/builtin/';

const SNIPPET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;

/**
 * The import name of a snippet tab from what a person typed ("my/fp8", "my/fp8.yaml"), or an
 * explanation of why it cannot be one.
 * @returns {{name: string} | {error: string}}
 */
export function snippetName(typed) {
  const name = String(typed)
    .trim()
    .replace(/\.ya?ml$/, '');
  if (!name) return { error: 'give the snippet a name, e.g. my/fp8' };
  if (!SNIPPET_NAME.test(name)) {
    return {
      error: `"${name}" is not a snippet name: use letters, digits, _ . - and / between parts`,
    };
  }
  return { name };
}

/** The file (relative to the working directory) that holds the snippet imported as `name`. */
export function snippetFile(name) {
  return `${SNIPPET_DIR}/${name}.yaml`;
}

/**
 * Which tab a diagnostic's file label points at: `recipe.yaml` is the recipe, a snippet is
 * named `snippets/NAME.yaml` when checked itself and `snippets:NAME.yaml` when imported.
 * @returns {string|null} RECIPE_FILE, a snippet name, or null (a built-in or unknown file)
 */
export function tabOfFile(file) {
  if (typeof file !== 'string') return null;
  if (file === RECIPE_FILE) return RECIPE_FILE;
  for (const prefix of [`${SNIPPET_DIR}/`, `${SNIPPET_DIR}:`]) {
    if (file.startsWith(prefix)) return file.slice(prefix.length).replace(/\.ya?ml$/, '');
  }
  return null;
}

/** The `--path` directories: the snippet directory once it holds a snippet. */
function searchPath(snippets) {
  return snippets.length ? [SNIPPET_DIR] : [];
}

/** The command line that checks the same files the same way. */
export function equivalentCommand(snippets) {
  const targets = [RECIPE_FILE, ...snippets.map((snippet) => snippetFile(snippet.name))];
  return [
    'qrecipe validate',
    ...searchPath(snippets).map((dir) => `--path ${dir}`),
    ...targets,
  ].join(' ');
}

/** The built-in recipes: [{name, description, text}], sorted by name. */
export function builtinRecipeList() {
  const host = memoryHost({ cwd: WORK_DIR, builtin: builtinRecipes });
  return listRecipes({ host, useEnv: false }).map((info) => ({
    name: info.name,
    description: info.description,
    text: builtinRecipes[info.path.slice(BUILTIN_PREFIX.length)],
  }));
}

/**
 * Validate every tab and resolve the recipe.
 * @param {{recipe: string, snippets: {name: string, text: string}[]}} session
 * @returns {{
 *   results: {file: string, diagnostics: import('qrecipe/core').Diagnostic[]}[],
 *   notices: string[],
 *   flat: object|null,
 *   flatText: string|null,
 *   unresolved: string|null,
 * }} per checked file its problems (as `qrecipe validate` lists them), and the flat recipe or
 *   why there is none
 */
export function checkSession(session) {
  const files = { [`${WORK_DIR}/${RECIPE_FILE}`]: session.recipe };
  for (const snippet of session.snippets)
    files[`${WORK_DIR}/${snippetFile(snippet.name)}`] = snippet.text;
  const notices = [];
  const options = {
    host: memoryHost({ files, cwd: WORK_DIR, builtin: builtinRecipes }),
    path: searchPath(session.snippets),
    useEnv: false,
    onNotice: (message) => notices.push(message),
  };
  const targets = [RECIPE_FILE, ...session.snippets.map((snippet) => snippetFile(snippet.name))];
  const results = targets.map((file) => ({ file, diagnostics: validateTarget(file, options) }));
  let flat = null;
  let unresolved = null;
  if (results[0].diagnostics.length) {
    unresolved = `${RECIPE_FILE} has problems; fix them to see its flat form`;
  } else {
    try {
      flat = resolve(RECIPE_FILE, options);
    } catch (error) {
      if (!(error instanceof RecipeError)) throw error;
      // A snippet in the recipe tab is valid but is not a recipe: there is no flat form.
      unresolved = error.diagnostics.map((d) => d.format()).join('\n');
    }
  }
  return { results, notices, flat, flatText: flat ? prettyJson(flat) : null, unresolved };
}
