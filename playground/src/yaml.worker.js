// The YAML language worker (yaml-language-server inside monaco-yaml): completion and hover from
// the published recipe schema. build.mjs bundles it on its own and embeds it in the page.
import 'monaco-yaml/yaml.worker.js';
