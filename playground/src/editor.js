// The Monaco editor with YAML support from monaco-yaml (yaml-language-server, the server the
// editor setup page documents), told about the published recipe schema: completion of keys and
// values with their descriptions, the schema's ready-made entries (defaultSnippets) and hover.
// Only the editor features a recipe needs are imported, to keep the page small.

import * as monaco from 'monaco-editor/esm/vs/editor/editor.api.js';
import 'monaco-editor/esm/vs/editor/browser/coreCommands.js';
import 'monaco-editor/esm/vs/editor/contrib/bracketMatching/browser/bracketMatching.js';
import 'monaco-editor/esm/vs/editor/contrib/clipboard/browser/clipboard.js';
import 'monaco-editor/esm/vs/editor/contrib/comment/browser/comment.js';
import 'monaco-editor/esm/vs/editor/contrib/contextmenu/browser/contextmenu.js';
import 'monaco-editor/esm/vs/editor/contrib/find/browser/findController.js';
import 'monaco-editor/esm/vs/editor/contrib/folding/browser/folding.js';
import 'monaco-editor/esm/vs/editor/contrib/gotoError/browser/gotoError.js';
import 'monaco-editor/esm/vs/editor/contrib/hover/browser/hoverContribution.js';
import 'monaco-editor/esm/vs/editor/contrib/indentation/browser/indentation.js';
import 'monaco-editor/esm/vs/editor/contrib/linesOperations/browser/linesOperations.js';
import 'monaco-editor/esm/vs/editor/contrib/multicursor/browser/multicursor.js';
import 'monaco-editor/esm/vs/editor/contrib/snippet/browser/snippetController2.js';
import 'monaco-editor/esm/vs/editor/contrib/suggest/browser/suggestController.js';
import 'monaco-editor/esm/vs/editor/contrib/wordOperations/browser/wordOperations.js';
import 'monaco-editor/esm/vs/basic-languages/yaml/yaml.contribution.js';
import { configureMonacoYaml } from 'monaco-yaml';
import { schema } from 'qrecipe/core';
import yamlWorkerCode from 'embedded:yaml-worker';

export { monaco };

let workerUrl = null;

// One worker script serves both labels: the YAML worker is Monaco's editor worker plus the YAML
// language service. It starts from a blob: URL because file:// pages cannot start workers.
globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    workerUrl ??= URL.createObjectURL(new Blob([yamlWorkerCode], { type: 'text/javascript' }));
    return new Worker(workerUrl, { name: `qrecipe-${label}` });
  },
};

const recipeSchema = schema('recipe');

configureMonacoYaml(monaco, {
  enableSchemaRequest: false,
  // Problems are reported by the qrecipe core (see check.js), with the very codes, positions and
  // hints of `qrecipe validate`, imports followed; the language server's own wording would only
  // repeat the schema part of them.
  validate: false,
  completion: true,
  hover: true,
  format: { enable: false },
  // Recipes are read by YAML 1.1 rules, as ModelOpt's loader reads them.
  yamlVersion: '1.1',
  schemas: [
    { uri: recipeSchema.$id, fileMatch: ['*.yaml', '**/*.yaml'], schema: recipeSchema },
    // The built-in recipes name the schema by a relative path in their first line
    // (`# yaml-language-server: $schema=../../../schema/recipe.schema.json`); in the
    // playground's file tree such paths end here.
    ...['file:///schema/recipe.schema.json', 'file:///project/schema/recipe.schema.json'].map(
      (uri) => ({ uri, fileMatch: [], schema: recipeSchema }),
    ),
  ],
});

/** The Monaco theme that matches the documentation site's colour scheme. */
function siteTheme() {
  return document.body.getAttribute('data-md-color-scheme') === 'slate' ? 'vs-dark' : 'vs';
}

/** Follow the site's light/dark toggle. */
export function followSiteTheme() {
  monaco.editor.setTheme(siteTheme());
  new MutationObserver(() => monaco.editor.setTheme(siteTheme())).observe(document.body, {
    attributes: true,
    attributeFilter: ['data-md-color-scheme'],
  });
}

/** A YAML model for a file of the playground's virtual working directory. */
export function createModel(text, file) {
  return monaco.editor.createModel(text, 'yaml', monaco.Uri.parse(`file:///project/${file}`));
}

export function createEditor(element) {
  return monaco.editor.create(element, {
    automaticLayout: true,
    minimap: { enabled: false },
    scrollBeyondLastLine: false,
    fixedOverflowWidgets: true,
    fontSize: 13,
    tabSize: 2,
    insertSpaces: true,
    detectIndentation: false,
    quickSuggestions: { other: true, comments: false, strings: true },
    renderLineHighlight: 'line',
    wordBasedSuggestions: 'off',
    theme: siteTheme(),
  });
}

/** The end column of the token that starts at `column` (a key, a scalar), for underlining. */
function tokenEnd(model, line, column) {
  const text = model.getLineContent(line);
  let end = column - 1;
  const quote = text[end] === '"' || text[end] === "'" ? text[end] : null;
  if (quote) {
    end = text.indexOf(quote, end + 1);
    end = end < 0 ? text.length : end + 1;
  } else {
    while (end < text.length && !/[\s:,\]}#]/.test(text[end])) end += 1;
  }
  return Math.max(end + 1, column + 1);
}

/**
 * Show qrecipe diagnostics on a model as error markers.
 * @param {import('monaco-editor').editor.ITextModel} model
 * @param {{message: string, line: number|null, column: number|null, hint: string|null,
 *   code: string, pointer: string|null}[]} diagnostics
 */
export function showDiagnostics(model, diagnostics) {
  const lineCount = model.getLineCount();
  const markers = diagnostics.map((d) => {
    const line = Math.min(Math.max(d.line || 1, 1), lineCount);
    const column = Math.min(Math.max(d.column || 1, 1), model.getLineMaxColumn(line));
    const endColumn = d.line ? tokenEnd(model, line, column) : model.getLineMaxColumn(line);
    const at = d.pointer ? ` (at ${d.pointer})` : '';
    return {
      severity: monaco.MarkerSeverity.Error,
      message: `${d.message}${at}${d.hint ? `\nhint: ${d.hint}` : ''}`,
      code: d.code,
      source: 'qrecipe',
      startLineNumber: line,
      startColumn: column,
      endLineNumber: line,
      endColumn,
    };
  });
  monaco.editor.setModelMarkers(model, 'qrecipe', markers);
}
