// Diagnostics and the error classes that carry them; codes match the Python package exactly.

/**
 * One problem: a message and where it is.
 * @typedef {object} DiagnosticFields
 * @property {string} message
 * @property {string|null} [file]
 * @property {number|null} [line]
 * @property {number|null} [column]
 * @property {string} [pointer]
 * @property {string[]} [chain]
 * @property {string} [code]
 * @property {string|null} [hint]
 */

export class Diagnostic {
  /** @param {DiagnosticFields} fields */
  constructor({
    message,
    file = null,
    line = null,
    column = null,
    pointer = '',
    chain = [],
    code = 'error',
    hint = null,
  }) {
    this.message = message;
    this.file = file;
    this.line = line;
    this.column = column;
    this.pointer = pointer;
    this.chain = chain;
    this.code = code;
    this.hint = hint;
  }

  /** `file:line:col`, as much of it as is known. */
  location() {
    const parts = [this.file || '<input>'];
    if (this.line !== null && this.line !== undefined) {
      parts.push(String(this.line));
      if (this.column !== null && this.column !== undefined) parts.push(String(this.column));
    }
    return parts.join(':');
  }

  /** The same human-readable rendering as the Python command line. */
  format() {
    let text = `${this.location()}: ${this.message}`;
    if (this.pointer) text += ` (at ${this.pointer})`;
    if (this.hint) text += `\n  hint: ${this.hint}`;
    if (this.chain.length > 1) text += `\n  imported via: ${this.chain.join(' -> ')}`;
    return text;
  }

  /** JSON-ready form (the same keys, in the same order, as Python's `to_dict`). */
  toJSON() {
    return {
      code: this.code,
      message: this.message,
      file: this.file,
      line: this.line,
      column: this.column,
      pointer: this.pointer,
      chain: [...this.chain],
      hint: this.hint,
    };
  }

  /** A copy with some fields replaced. */
  with(fields) {
    return new Diagnostic({ ...this, ...fields });
  }
}

/**
 * Base class of every error about a recipe or flat document; carries one or more diagnostics.
 * Each subclass names its code; build its diagnostics with `diagnostic()` (or pass a message and
 * where it is), so that the code always matches the error's type.
 */
export class RecipeError extends Error {
  static code = 'error';

  /**
   * @param {Diagnostic|Diagnostic[]|string} diagnostics
   * @param {Partial<DiagnosticFields>} [where] location fields when `diagnostics` is a message
   */
  constructor(diagnostics, where = {}) {
    let list;
    if (typeof diagnostics === 'string') {
      list = [new.target.diagnostic(diagnostics, where)];
    } else if (diagnostics instanceof Diagnostic) {
      list = [diagnostics];
    } else {
      list = [...diagnostics];
    }
    super(list.map((d) => d.format()).join('\n'));
    this.name = new.target.name;
    /** @type {Diagnostic[]} */
    this.diagnostics = list;
  }

  /**
   * A diagnostic carrying this error type's code.
   * @param {string} message
   * @param {Partial<DiagnosticFields>} [where]
   */
  static diagnostic(message, where = {}) {
    return new Diagnostic({ ...where, message, code: this.code });
  }

  get code() {
    return /** @type {typeof RecipeError} */ (this.constructor).code;
  }

  get first() {
    return this.diagnostics[0];
  }
}

export class RecipeSyntaxError extends RecipeError {
  static code = 'syntax';
}
export class DuplicateKeyError extends RecipeSyntaxError {
  static code = 'duplicate-key';
}
export class RecipeLimitError extends RecipeError {
  static code = 'limit';
}
export class SchemaValidationError extends RecipeError {
  static code = 'schema';
}
export class RecipeSemanticError extends RecipeError {
  static code = 'semantic';
}
export class RecipeNotFoundError extends RecipeError {
  static code = 'not-found';
}
export class ImportNotFoundError extends RecipeNotFoundError {
  static code = 'import-not-found';
}
export class ImportCycleError extends RecipeError {
  static code = 'import-cycle';
}
export class ImportKindError extends RecipeError {
  static code = 'import-kind';
}
export class PathEscapeError extends RecipeError {
  static code = 'path-escape';
}
export class FingerprintMismatchError extends RecipeError {
  static code = 'fingerprint';
}

/** Error classes by code, to re-raise a diagnostic list under the same class. */
export const ERROR_CLASSES = Object.fromEntries(
  [
    RecipeError,
    RecipeSyntaxError,
    DuplicateKeyError,
    RecipeLimitError,
    SchemaValidationError,
    RecipeSemanticError,
    RecipeNotFoundError,
    ImportNotFoundError,
    ImportCycleError,
    ImportKindError,
    PathEscapeError,
    FingerprintMismatchError,
  ].map((cls) => [cls.code, cls]),
);

/** Order diagnostics by line, column and pointer (a missing line or column counts as 0). */
export function sortDiagnostics(diagnostics) {
  return [...diagnostics].sort((a, b) => {
    const byLine = (a.line || 0) - (b.line || 0);
    if (byLine) return byLine;
    const byColumn = (a.column || 0) - (b.column || 0);
    if (byColumn) return byColumn;
    return a.pointer < b.pointer ? -1 : a.pointer > b.pointer ? 1 : 0;
  });
}
