/**
 * Unguessable hex strings (ids, nonces, group names) from the CSPRNG. The bytes are fetched 4 KiB
 * at a time, as crypto.randomUUID caches its entropy: on this kind of VM one randomBytes(16)
 * call cost ~40 µs, a visible part of a warm kernel cell. Each byte is handed out once.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let next = pool.length;

/** `bytes` (at most 4096) fresh random bytes as 2 × `bytes` lowercase hex digits. */
export function randomHex(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > pool.length) throw new RangeError(`randomHex: ${bytes} bytes`);
  if (next + bytes > pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const hex = pool.toString('hex', next, next + bytes);
  next += bytes;
  return hex;
}
