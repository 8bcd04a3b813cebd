// Reading files through a host without surprises: a file that is missing, a directory, a
// FIFO, a symbolic-link loop, a name too long or a file of gigabytes gives a diagnostic, never
// an exception of the host. With a host that can (the Node one), a file over the size limit is
// refused before a byte is read. The Python package does the same (files.py).

import { RecipeLimitError, RecipeNotFoundError } from './errors.js';
import { MAX_FILE_BYTES } from './limits.js';

// The operating system's words for the usual failures, as Python reports them.
const STRERROR = {
  ENOENT: 'No such file or directory',
  EISDIR: 'Is a directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  ENXIO: 'No such device or address',
  EAGAIN: 'Resource temporarily unavailable',
  EMFILE: 'Too many open files',
  EIO: 'Input/output error',
  ENOTREG: 'not a regular file',
  ERR_INVALID_ARG_VALUE: 'invalid file name',
  ERR_INVALID_ARG_TYPE: 'invalid file name',
};

/** Why reading failed, in the operating system's words. */
export function readFailure(error) {
  return error.strerror || STRERROR[error.code] || error.message;
}

/**
 * The content of a file of at most MAX_FILE_BYTES, or a RecipeError. `display` names the file
 * in messages; `what` is put before it ("flat recipe").
 */
export function readFile(host, path, display, what = '') {
  const name = what ? `${what} ${display}` : display;
  try {
    return host.read(path, MAX_FILE_BYTES);
  } catch (error) {
    if (error && error.code === 'EFBIG') {
      throw new RecipeLimitError(`file is ${error.size} bytes, more than the ${MAX_FILE_BYTES}-byte limit`, {
        file: display,
      });
    }
    throw new RecipeNotFoundError(`cannot read ${name}: ${readFailure(error)}`, { file: display });
  }
}
