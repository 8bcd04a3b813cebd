// A session (the recipe and the snippet tabs) written into the URL fragment and read back, so a
// link reproduces it. The fragment never leaves the browser: nothing is sent anywhere.
//
// Format: `#s1=` then base64url of the raw-DEFLATE-compressed UTF-8 JSON
// {"recipe": TEXT, "snippets": [[NAME, TEXT], ...], "open": NAME|null}.

const PREFIX = 's1=';

function toBase64Url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function transform(bytes, stream) {
  const piped = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

/**
 * The URL fragment (without `#`) of a session.
 * @param {{recipe: string, snippets: {name: string, text: string}[], open?: string|null}} session
 */
export async function encodeSession(session) {
  const json = JSON.stringify({
    recipe: session.recipe,
    snippets: session.snippets.map((snippet) => [snippet.name, snippet.text]),
    open: session.open ?? null,
  });
  const compressed = await transform(
    new TextEncoder().encode(json),
    new CompressionStream('deflate-raw'),
  );
  return PREFIX + toBase64Url(compressed);
}

function isString(value) {
  return typeof value === 'string';
}

/**
 * The session in a URL fragment (with or without `#`); null when the fragment holds none.
 * Throws an Error saying what is wrong when it holds a damaged one.
 */
export async function decodeSession(fragment) {
  const text = fragment.replace(/^#/, '');
  if (!text.startsWith(PREFIX)) return null;
  let data;
  try {
    const bytes = await transform(
      fromBase64Url(text.slice(PREFIX.length)),
      new DecompressionStream('deflate-raw'),
    );
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new Error('the link is damaged (cut short or changed): its recipe cannot be read');
  }
  const snippets = Array.isArray(data?.snippets) ? data.snippets : null;
  if (
    !isString(data?.recipe) ||
    !snippets ||
    !snippets.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every(isString))
  ) {
    throw new Error('the link does not hold a playground session');
  }
  return {
    recipe: data.recipe,
    snippets: snippets.map(([name, body]) => ({ name, text: body })),
    open: isString(data.open) ? data.open : null,
  };
}
