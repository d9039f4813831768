/**
 * Unguessable tokens (ids, nonces, group names, claims) from the CSPRNG. The bytes are fetched
 * 4 KiB at a time, as crypto.randomUUID caches its entropy: on this kind of VM one
 * randomBytes(16) call cost ~40 µs (~110 µs for an HTTP request id under load), a visible part of
 * a warm kernel cell. Each byte is handed out once.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let next = pool.length;

/** The pool's next `bytes` (1 to 4096) unused bytes, as a view valid until the next call. */
function take(bytes: number): { start: number; end: number } {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > pool.length) throw new RangeError(`random token of ${bytes} bytes`);
  if (next + bytes > pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next;
  next += bytes;
  return { start, end: next };
}

/** `bytes` fresh random bytes as 2 × `bytes` lowercase hex digits. */
export function randomHex(bytes: number): string {
  const { start, end } = take(bytes);
  return pool.toString('hex', start, end);
}

/** `bytes` fresh random bytes in base64url (no padding). */
export function randomBase64url(bytes: number): string {
  const { start, end } = take(bytes);
  return pool.toString('base64url', start, end);
}
