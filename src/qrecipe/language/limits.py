"""Every limit on the work one recipe can cause, in one place.

The same numbers are in the JavaScript package (``js/src/core/limits.js``) and in the
authoring guide (``docs/authoring.md``, "Limits"); each has a conformance vector.
"""

from __future__ import annotations

# One file: checked before it is read, then while it is read.
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_DOCUMENTS = 2
MAX_KEY_LENGTH = 1024
MAX_SAFE_INTEGER = 2**53 - 1

# One recipe: checked while its imports are expanded, so an import that multiplies the work
# fails as soon as it crosses a limit, named where it is written.
MAX_IMPORT_DEPTH = 32
MAX_IMPORTED_FILES = 1000
MAX_RESOLVED_VALUES = 100_000
MAX_RESOLVED_BYTES = 4 << 20
