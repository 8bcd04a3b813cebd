// JSON pointers (RFC 6901): how every message says where a value is.

/** Escape one JSON-pointer reference token (RFC 6901). */
export function escapePointerToken(token) {
  return String(token).replaceAll('~', '~0').replaceAll('/', '~1');
}

export function joinPointer(pointer, token) {
  if (typeof token === 'number' || (!token.includes('~') && !token.includes('/'))) return `${pointer}/${token}`;
  return `${pointer}/${escapePointerToken(token)}`;
}

/** The key or index a JSON-pointer reference token names. */
export function unescapePointerToken(token) {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}
