// Every limit on the work one recipe can cause, in one place. The same numbers are in the
// Python package (src/qrecipe/language/limits.py) and in the authoring guide
// (docs/authoring.md, "Limits"); each has a conformance vector.

// One file: checked before it is read, then while it is read.
export const MAX_FILE_BYTES = 1 << 20;
export const MAX_DEPTH = 64;
export const MAX_NODES = 100_000;
export const MAX_DOCUMENTS = 2;
export const MAX_KEY_LENGTH = 1024;
export const MAX_SAFE_INTEGER = 2 ** 53 - 1;

// One recipe: checked while its imports are expanded, so an import that multiplies the work
// fails as soon as it crosses a limit, named where it is written.
export const MAX_IMPORT_DEPTH = 32;
export const MAX_IMPORTED_FILES = 1000;
export const MAX_RESOLVED_VALUES = 100_000;
export const MAX_RESOLVED_BYTES = 4 << 20;
