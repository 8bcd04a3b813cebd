// Types of the qrecipe package (Node entry point "qrecipe" and browser-safe "qrecipe/core").

export interface DiagnosticData {
  code: ErrorCode;
  message: string;
  file: string | null;
  line: number | null;
  column: number | null;
  pointer: string;
  chain: string[];
  hint: string | null;
}

export type ErrorCode =
  | 'syntax'
  | 'duplicate-key'
  | 'limit'
  | 'schema'
  | 'semantic'
  | 'not-found'
  | 'import-not-found'
  | 'import-cycle'
  | 'import-kind'
  | 'path-escape'
  | 'fingerprint';

export class Diagnostic implements DiagnosticData {
  constructor(fields: Partial<DiagnosticData> & { message: string });
  code: ErrorCode;
  message: string;
  file: string | null;
  line: number | null;
  column: number | null;
  pointer: string;
  chain: string[];
  hint: string | null;
  /** `file:line:col` */
  location(): string;
  /** `file:line:col: message (at /pointer)` and `  hint: ...`, as the command line prints it. */
  format(): string;
  toJSON(): DiagnosticData;
}

export class RecipeError extends Error {
  static code: ErrorCode | 'error';
  readonly code: ErrorCode;
  diagnostics: Diagnostic[];
  readonly first: Diagnostic;
}
export class RecipeSyntaxError extends RecipeError {}
export class DuplicateKeyError extends RecipeSyntaxError {}
export class RecipeLimitError extends RecipeError {}
export class SchemaValidationError extends RecipeError {}
export class RecipeSemanticError extends RecipeError {}
export class RecipeNotFoundError extends RecipeError {}
export class ImportNotFoundError extends RecipeNotFoundError {}
export class ImportCycleError extends RecipeError {}
export class ImportKindError extends RecipeError {}
export class PathEscapeError extends RecipeError {}
export class FingerprintMismatchError extends RecipeError {}

export interface ValidationResult {
  valid: boolean;
  errors: DiagnosticData[];
}

/** A `$defs` name of recipe.schema.json. */
export type Kind =
  | 'recipe'
  | 'directory_recipe_file'
  | 'metadata_file'
  | 'quantize_file'
  | 'entry_list'
  | 'entry_snippet'
  | 'algorithm_snippet'
  | 'attributes_snippet'
  | 'list_snippet_header'
  | string;

/** File access for resolution. Paths are absolute and POSIX-style. */
export interface Host {
  cwd: string;
  builtinRoot: string | null;
  searchPath?: string;
  pathSeparator?: string;
  absolute(path: string): string;
  realpath(path: string): string;
  /** 'file' for a regular file, 'dir' for a directory, null otherwise (never throws). */
  stat(path: string): 'file' | 'dir' | null;
  /**
   * The content of a file. A host that can should refuse a file larger than `limit` bytes
   * before reading it, by throwing an error with code 'EFBIG' and the file's `size`.
   */
  read(path: string, limit?: number): string | Uint8Array;
  list?(directory: string): string[];
  expandUser?(path: string): string;
}

export interface ResolveOptions {
  /** Extra search roots (like `--path`). */
  path?: string[];
  /** Read extra roots from the host's search path (QRECIPE_PATH in Node). Default true. */
  useEnv?: boolean;
  /** Search the built-in library. Default true. */
  builtin?: boolean;
  /** Add `provenance` (where each quant_cfg entry came from). */
  provenance?: boolean;
  /** Receives notices such as deprecated recipe names. */
  onNotice?: (message: string) => void;
  /** Hex SHA-256 of bytes. */
  hash?: (bytes: Uint8Array) => string;
}

export interface CoreResolveOptions extends ResolveOptions {
  host: Host;
}

export interface NodeResolveOptions extends ResolveOptions {
  host?: Host;
  /** Working directory (default: process.cwd()). */
  cwd?: string;
  /** Built-in library directory (default: the packaged one). */
  builtinRoot?: string | null;
  /** Overrides $QRECIPE_PATH. */
  searchPath?: string;
}

export interface FlatRecipe {
  $schema: string;
  fingerprint: string;
  metadata: { recipe_type: 'ptq'; description: string };
  quantize: {
    algorithm: ({ method: string } & Record<string, unknown>) | null;
    quant_cfg: Array<{
      quantizer_name: string;
      parent_class: string | null;
      enable: boolean;
      cfg: Record<string, unknown> | Array<Record<string, unknown>> | null;
    }>;
    effective_bits: number | null;
  };
  provenance?: { recipe: string; entries: Array<{ file: string; line: number; chain: string[] }> };
}

/** Check one recipe or snippet document against the authoring schema (imports not followed). */
export function validate(
  input: string | Uint8Array | object,
  kind?: Kind | null,
  options?: { file?: string },
): ValidationResult;
/** Check a flat recipe: schema and fingerprint. */
export function validateFlat(input: string | Uint8Array | object, options?: { file?: string }): ValidationResult;
/** Parse and check a flat recipe; throws a RecipeError when invalid. */
export function loadFlat(input: string | Uint8Array | object, options?: { file?: string; cwd?: string }): FlatRecipe;
/** The flat canonical form of a recipe (built-in name, name under a search root, or path). */
export function resolve(nameOrPath: string, options?: NodeResolveOptions): FlatRecipe;
/** The recipe with every import expanded, defaults not filled in. */
export function load(nameOrPath: string, options?: NodeResolveOptions): Record<string, unknown>;
/** Every problem of a recipe, snippet or flat `.json` file, imports resolved (Node). */
export function validateFile(target: string, options?: NodeResolveOptions): Diagnostic[];
/** Every problem of a target through a host (core). */
export function validateTarget(target: string, options: CoreResolveOptions): Diagnostic[];
export function listRecipes(options?: NodeResolveOptions): Array<{ name: string; description: string; path: string; root: string }>;
/** Indented JSON with RFC 8785 key order and numbers, ending in a newline (as Python's pretty_json). */
export function prettyJson(value: unknown, indent?: number): string;
/** RFC 8785 canonical JSON text (as Python's canonical_bytes, decoded). */
export function canonicalJson(value: unknown): string;
/** RFC 8785 canonical JSON bytes. */
export function canonicalBytes(value: unknown): Uint8Array;
/** `sha256:<hex>` of the canonical bytes of {quantize, recipe_type}. */
export function fingerprint(flat: FlatRecipe | object, hash?: (bytes: Uint8Array) => string): string;
export function sha256Hex(bytes: Uint8Array): string;
/** The kind of a parsed document, by shape. */
export function detectKind(data: unknown): Kind;
/** A published schema, parsed. */
export function schema(name?: 'recipe' | 'flat'): Record<string, unknown>;
/** A published schema's exact text. */
export function schemaText(name?: 'recipe' | 'flat' | 'catalog'): string;
export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[];
/** A host serving files from memory or a loader callback; built-ins appear under /builtin. */
export function memoryHost(options?: {
  files?: Record<string, string | Uint8Array>;
  loader?: (path: string) => string | Uint8Array | null | undefined;
  cwd?: string;
  builtin?: Record<string, string> | null;
  searchPath?: string;
}): Host;
/** A host over the filesystem (Node only). */
export function fsHost(options?: { cwd?: string; builtinRoot?: string | null; searchPath?: string }): Host;
