// What a path is, for the file-system host and the command line alike.

import fs from 'node:fs';

/** 'file', 'dir' or null (missing, a name too long, a symbolic-link loop, a FIFO...): never throws. */
export function statKind(path) {
  let stats;
  try {
    stats = fs.statSync(path, { throwIfNoEntry: false });
  } catch {
    return null;
  }
  if (!stats) return null;
  if (stats.isFile()) return 'file';
  return stats.isDirectory() ? 'dir' : null;
}
