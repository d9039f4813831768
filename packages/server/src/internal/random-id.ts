/**
 * Ids that cannot be guessed: 128 random bits from the CSPRNG, as 32 lowercase hex digits.
 * (A v4 UUID carries only 122.) Hex keeps ids valid as session ids and safe in URLs, paths and
 * command lines (never a leading `-`).
 */
import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
/**
 * CSPRNG bytes fetched 256 ids at a time (as crypto.randomUUID caches its entropy): a
 * randomBytes call per id cost a warm kernel cell ~50 µs. Each byte is handed out once.
 */
const pool = Buffer.alloc(ID_BYTES * 256);
let next = pool.length;

/** A new random id: 32 hex digits, 128 bits. */
export function randomID(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const id = pool.toString('hex', next, next + ID_BYTES);
  next += ID_BYTES;
  return id;
}
