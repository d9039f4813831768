/**
 * Ids that cannot be guessed: 128 random bits from the CSPRNG, as 32 lowercase hex digits.
 * (A v4 UUID carries only 122.) Hex keeps ids valid as session ids and safe in URLs, paths and
 * command lines (never a leading `-`).
 */
import { randomHex } from '@sluice/sandbox';

/** A new random id: 32 hex digits, 128 bits. */
export function randomID(): string {
  return randomHex(16);
}
