/** Random identifiers (idempotency keys, WebSocket request ids) from the Web Crypto API. */

/** 128 random bits as 32 hex digits. */
export function randomID(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
