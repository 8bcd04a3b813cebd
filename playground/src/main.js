// The recipe playground page: an editor with tabs (the recipe and any snippets), the problems
// of every tab as `qrecipe validate` reports them, and the recipe's flat form and fingerprint,
// all recomputed in the browser on every edit. The session lives in the URL fragment.

import './playground.css';
import {
  RECIPE_FILE,
  SNIPPET_DIR,
  builtinRecipeList,
  checkSession,
  equivalentCommand,
  snippetFile,
  snippetName,
  tabOfFile,
} from './check.js';
import { createEditor, createModel, followSiteTheme, monaco, showDiagnostics } from './editor.js';
import { decodeSession, encodeSession } from './share.js';

const DEFAULT_RECIPE = 'general/ptq/fp8_default-kv_fp8';
const CHECK_DELAY_MS = 250;
// The recipe's tab is named by its file: no snippet name ends in .yaml.
const RECIPE_TAB = RECIPE_FILE;
const NEW_SNIPPET_TEXT = (name) =>
  `# A snippet: list it under the recipe's imports as  ${name.split('/').pop()}: ${name}\n` +
  'num_bits: e4m3\naxis:\n';

/** Create an element: h('button.copy', {title: 'Copy'}, 'Copy'). */
function h(tag, attributes = {}, ...children) {
  const [name, ...classes] = tag.split('.');
  const element = document.createElement(name);
  if (classes.length) element.className = classes.join(' ');
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    // No clipboard access (some browsers on file:// pages): select the text for Ctrl+C.
    const area = h('textarea.qp-copy-fallback', { readonly: '' });
    area.value = text;
    document.body.append(area);
    area.select();
    const copied = document.execCommand('copy');
    area.remove();
    button.textContent = copied ? 'Copied' : 'Copy failed';
  }
  setTimeout(() => {
    button.textContent = label;
  }, 1500);
}

function samePlace(a, b) {
  return a.line === b.line && a.column === b.column && a.message === b.message;
}

/** One entry of the problem list, worded as `qrecipe validate` prints it. */
function problemItem(diagnostic, reveal) {
  const [first, ...more] = diagnostic.format().split('\n');
  return h(
    'li.qp-problem',
    {
      'data-file': diagnostic.file,
      'data-line': diagnostic.line ?? '',
      'data-column': diagnostic.column ?? '',
      'data-code': diagnostic.code,
    },
    h(
      'button.qp-problem-location',
      { type: 'button', onclick: reveal, disabled: reveal ? null : '' },
      first,
    ),
    h('span.qp-code', {}, diagnostic.code),
    ...more.map((line) => h('div.qp-problem-more', {}, line.trim())),
  );
}

class Playground {
  constructor(root) {
    this.root = root;
    this.builtins = builtinRecipeList();
    this.tabs = [{ id: RECIPE_TAB, label: RECIPE_FILE, model: createModel('', RECIPE_FILE) }];
    this.active = RECIPE_TAB;
    this.timer = null;
    this.pending = false;
    this.lastCheck = null;
    this.checkCount = 0;
    this.fragment = '';
    this.render();
    this.editor = createEditor(this.editorElement);
    this.editor.setModel(this.tabs[0].model);
    this.watch(this.tabs[0].model);
    followSiteTheme();
  }

  // ------------------------------------------------------------------ layout
  render() {
    const groups = new Map();
    for (const recipe of this.builtins) {
      const group = recipe.name.split('/').slice(0, -1).join('/');
      if (!groups.has(group)) groups.set(group, h('optgroup', { label: group }));
      groups
        .get(group)
        .append(
          h(
            'option',
            { value: recipe.name, title: recipe.description },
            recipe.name.split('/').pop(),
          ),
        );
    }
    this.picker = h(
      'select.qp-picker',
      {
        'aria-label': 'Open a built-in recipe',
        onchange: () => this.openBuiltin(this.picker.value),
      },
      h('option', { value: '' }, 'Open a built-in recipe…'),
      ...groups.values(),
    );
    this.description = h('p.qp-description');
    this.shareButton = h(
      'button.qp-button.qp-share',
      { type: 'button', onclick: () => this.share() },
      'Copy share link',
    );
    this.status = h('span.qp-status', { role: 'status' });
    this.tabBar = h('div.qp-tabs', { role: 'tablist' });
    this.snippetInput = h('input.qp-snippet-name', {
      type: 'text',
      placeholder: 'snippet name, e.g. my/fp8',
      'aria-label': 'New snippet name',
      onkeydown: (event) => {
        if (event.key === 'Enter') this.addSnippetFromInput();
      },
    });
    this.snippetError = h('span.qp-snippet-error', { role: 'alert' });
    this.editorElement = h('div.qp-editor');
    this.problemSummary = h('p.qp-summary');
    this.problemList = h('ul.qp-problems', { 'aria-label': 'Problems' });
    this.command = h('code.qp-command');
    this.fingerprint = h('code.qp-fingerprint');
    this.flatOutput = h('pre.qp-flat', { tabindex: '0', 'aria-label': 'Flat recipe' });
    this.copyFlatButton = h(
      'button.qp-button',
      { type: 'button', onclick: (e) => this.copyFlat(e.target) },
      'Copy JSON',
    );
    this.copyFingerprintButton = h(
      'button.qp-button',
      { type: 'button', onclick: (e) => copyText(this.fingerprint.textContent, e.target) },
      'Copy fingerprint',
    );
    this.root.replaceChildren(
      h('div.qp-toolbar', {}, this.picker, this.shareButton, this.status),
      this.description,
      h(
        'div.qp-main',
        {},
        h(
          'section.qp-left',
          { 'aria-label': 'Recipe' },
          h(
            'div.qp-tabrow',
            {},
            this.tabBar,
            h(
              'span.qp-add',
              {},
              this.snippetInput,
              h(
                'button.qp-button',
                { type: 'button', onclick: () => this.addSnippetFromInput() },
                'Add snippet',
              ),
            ),
          ),
          this.snippetError,
          this.editorElement,
          h(
            'div.qp-problem-head',
            {},
            this.problemSummary,
            h('p.qp-command-line', {}, 'Same as ', this.command),
          ),
          this.problemList,
        ),
        h(
          'section.qp-right',
          { 'aria-label': 'Flat recipe' },
          h(
            'div.qp-flat-head',
            {},
            h('strong', {}, 'Flat form'),
            h('span.qp-flat-buttons', {}, this.copyFingerprintButton, this.copyFlatButton),
          ),
          h('p.qp-fingerprint-line', {}, 'fingerprint ', this.fingerprint),
          this.flatOutput,
        ),
      ),
    );
    this.renderTabs();
  }

  renderTabs() {
    this.tabBar.replaceChildren(
      ...this.tabs.map((tab) => {
        const selected = tab.id === this.active;
        const button = h(
          'button.qp-tab',
          {
            type: 'button',
            role: 'tab',
            'aria-selected': String(selected),
            'data-tab': tab.id,
            title: tab.id === RECIPE_TAB ? 'The recipe' : `Imported as ${tab.id}`,
            onclick: () => this.activate(tab.id),
          },
          tab.label,
        );
        if (tab.id === RECIPE_TAB) return button;
        const close = h(
          'button.qp-tab-close',
          {
            type: 'button',
            'aria-label': `Remove snippet ${tab.id}`,
            onclick: () => this.removeSnippet(tab.id),
          },
          '×',
        );
        return h('span.qp-tab-group', { 'data-selected': String(selected) }, button, close);
      }),
    );
  }

  // ------------------------------------------------------------------ tabs and session
  tab(id) {
    return this.tabs.find((tab) => tab.id === id) || null;
  }

  watch(model) {
    model.onDidChangeContent(() => this.schedule());
  }

  activate(id) {
    const tab = this.tab(id);
    if (!tab) return;
    this.active = id;
    this.editor.setModel(tab.model);
    this.renderTabs();
    this.editor.focus();
    this.schedule();
  }

  addSnippet(name, text) {
    const model = createModel(text, snippetFile(name));
    this.watch(model);
    this.tabs.push({ id: name, label: `${SNIPPET_DIR}/${name}.yaml`, model });
  }

  addSnippetFromInput() {
    const named = snippetName(this.snippetInput.value);
    if (named.error || this.tab(named.name)) {
      this.snippetError.textContent = named.error || `there is already a snippet ${named.name}`;
      return;
    }
    this.snippetError.textContent = '';
    this.snippetInput.value = '';
    this.addSnippet(named.name, NEW_SNIPPET_TEXT(named.name));
    this.activate(named.name);
  }

  removeSnippet(id) {
    const tab = this.tab(id);
    if (!tab) return;
    this.tabs = this.tabs.filter((other) => other !== tab);
    if (this.active === id) this.activate(RECIPE_TAB);
    tab.model.dispose();
    this.renderTabs();
    this.schedule();
  }

  session() {
    return {
      recipe: this.tab(RECIPE_TAB).model.getValue(),
      snippets: this.tabs
        .filter((tab) => tab.id !== RECIPE_TAB)
        .map((tab) => ({ name: tab.id, text: tab.model.getValue() })),
      open: this.active === RECIPE_TAB ? null : this.active,
    };
  }

  restore(session) {
    for (const tab of this.tabs.filter((other) => other.id !== RECIPE_TAB)) tab.model.dispose();
    this.tabs = this.tabs.filter((tab) => tab.id === RECIPE_TAB);
    this.tab(RECIPE_TAB).model.setValue(session.recipe);
    for (const snippet of session.snippets) {
      const named = snippetName(snippet.name);
      if (named.name && !this.tab(named.name)) this.addSnippet(named.name, snippet.text);
    }
    this.activate(session.open && this.tab(session.open) ? session.open : RECIPE_TAB);
  }

  openBuiltin(name) {
    const recipe = this.builtins.find((candidate) => candidate.name === name);
    if (!recipe) return;
    const model = this.tab(RECIPE_TAB).model;
    // An edit, not a new text, so that undo brings the previous recipe back.
    this.editor.setModel(model);
    model.pushEditOperations(
      [],
      [{ range: model.getFullModelRange(), text: recipe.text }],
      () => null,
    );
    this.picker.value = '';
    this.description.textContent = `Opened the built-in recipe ${recipe.name}: ${
      recipe.description
    }`;
    this.activate(RECIPE_TAB);
    this.editor.setPosition({ lineNumber: 1, column: 1 });
    this.editor.revealLine(1);
  }

  // ------------------------------------------------------------------ checking
  schedule() {
    clearTimeout(this.timer);
    this.pending = true;
    this.status.textContent = 'checking…';
    this.timer = setTimeout(() => this.check(), CHECK_DELAY_MS);
  }

  check() {
    clearTimeout(this.timer);
    this.pending = false;
    const session = this.session();
    const started = performance.now();
    const outcome = checkSession(session);
    const elapsed = performance.now() - started;
    this.lastCheck = outcome;
    this.checkCount += 1;
    this.showProblems(outcome, session);
    this.showFlat(outcome);
    this.status.textContent = `checked in ${elapsed.toFixed(0)} ms`;
    this.remember(session);
  }

  showProblems(outcome, session) {
    // Markers per tab; a snippet's problem found both by checking it and through the recipe's
    // import is listed twice (as by the command line) but marked once.
    const byTab = new Map(this.tabs.map((tab) => [tab.id, []]));
    const items = [];
    for (const diagnostic of outcome.results.flatMap((result) => result.diagnostics)) {
      const tabId = tabOfFile(diagnostic.file);
      const marked = byTab.get(tabId);
      if (marked && !marked.some((other) => samePlace(other, diagnostic))) marked.push(diagnostic);
      const reveal = marked ? () => this.reveal(tabId, diagnostic.line, diagnostic.column) : null;
      items.push(problemItem(diagnostic, reveal));
    }
    for (const notice of outcome.notices) items.push(h('li.qp-notice', {}, `notice: ${notice}`));
    for (const tab of this.tabs) {
      showDiagnostics(tab.model, byTab.get(tab.id));
      const button = this.tabBar.querySelector(`[data-tab="${CSS.escape(tab.id)}"]`);
      button?.classList.toggle('qp-tab-bad', byTab.get(tab.id).length > 0);
    }
    const checked = outcome.results.length;
    const failed = outcome.results.filter((result) => result.diagnostics.length).length;
    const count = outcome.results.reduce((sum, result) => sum + result.diagnostics.length, 0);
    this.problemSummary.textContent = count
      ? `${count} problem(s) in ${failed} of ${checked} file(s)`
      : `No problems in ${checked} file(s)`;
    this.command.textContent = equivalentCommand(session.snippets);
    this.problemList.replaceChildren(...items);
  }

  showFlat(outcome) {
    if (outcome.flat) {
      this.fingerprint.textContent = outcome.flat.fingerprint;
      this.flatOutput.textContent = outcome.flatText;
      this.flatOutput.classList.remove('qp-unresolved');
    } else {
      this.fingerprint.textContent = '—';
      this.flatOutput.textContent = outcome.unresolved;
      this.flatOutput.classList.add('qp-unresolved');
    }
    this.copyFlatButton.disabled = !outcome.flat;
    this.copyFingerprintButton.disabled = !outcome.flat;
  }

  reveal(tabId, line, column) {
    this.activate(tabId);
    if (!line) return;
    this.editor.setPosition({ lineNumber: line, column: column || 1 });
    this.editor.revealLineInCenter(line);
    this.editor.focus();
  }

  copyFlat(button) {
    if (this.lastCheck?.flatText) copyText(this.lastCheck.flatText, button);
  }

  // ------------------------------------------------------------------ sharing
  async remember(session) {
    const fragment = await encodeSession(session);
    this.fragment = fragment;
    if (window.location.hash.slice(1) !== fragment) history.replaceState(null, '', `#${fragment}`);
  }

  async share() {
    await this.remember(this.session());
    await copyText(window.location.href, this.shareButton);
  }

  async load() {
    let session = null;
    let failure = null;
    try {
      session = await decodeSession(window.location.hash);
    } catch (error) {
      failure = error;
    }
    if (session) {
      this.restore(session);
      this.description.textContent = 'Opened from a shared link.';
    } else {
      this.openBuiltin(DEFAULT_RECIPE);
    }
    if (failure)
      this.description.textContent = `Could not open the shared recipe: ${failure.message}.`;
    this.check();
    window.addEventListener('hashchange', () => this.followLink());
  }

  async followLink() {
    if (window.location.hash.slice(1) === this.fragment) return;
    try {
      const session = await decodeSession(window.location.hash);
      if (session) this.restore(session);
    } catch (error) {
      this.description.textContent = `Could not open the shared recipe: ${error.message}.`;
    }
  }

  // ------------------------------------------------------------------ for the page's tests
  inspect() {
    return {
      session: this.session(),
      checks: this.checkCount,
      fingerprint: this.lastCheck?.flat?.fingerprint ?? null,
      flatText: this.lastCheck?.flatText ?? null,
      results: (this.lastCheck?.results ?? []).map((result) => ({
        file: result.file,
        errors: result.diagnostics.map((d) => d.toJSON()),
      })),
      markers: Object.fromEntries(
        this.tabs.map((tab) => [
          tab.id,
          monaco.editor.getModelMarkers({ resource: tab.model.uri }).map((m) => ({
            line: m.startLineNumber,
            column: m.startColumn,
            message: m.message,
          })),
        ]),
      ),
    };
  }
}

function start() {
  const root = document.getElementById('qrecipe-playground');
  if (!root) return;
  const playground = new Playground(root);
  root.classList.add('qp-ready');
  window.qrecipePlayground = playground;
  playground.load().then(() => root.setAttribute('data-loaded', 'true'));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
