/**
 * UTF-8 character boundaries in raw bytes, so output is never cut inside a character
 * (decoding each chunk separately turns one split `€` into several U+FFFD).
 */

/** Bytes a sequence starting with lead byte `b` claims (1 for ASCII and for invalid leads). */
function sequenceLength(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 1;
}

/**
 * The largest index `i <= end` at which `buf` can be cut without splitting a valid multi-byte
 * sequence. Garbage (stray continuation bytes, invalid leads) never holds a cut back: it
 * decodes to U+FFFD wherever it falls.
 */
export function utf8Boundary(buf: Uint8Array, end: number = buf.length): number {
  const stop = Math.min(Math.max(end, 0), buf.length);
  for (let i = stop - 1; i >= 0 && i >= stop - 4; i--) {
    const b = buf[i] as number;
    if ((b & 0xc0) === 0x80) continue;
    const need = sequenceLength(b);
    return need > 1 && i + need > stop ? i : stop;
  }
  return stop;
}

/** Index of the first byte at or after `start` that does not continue a previous character. */
export function nextCharStart(buf: Uint8Array, start: number): number {
  let i = Math.max(0, start);
  // A character has at most three continuation bytes; more than that is garbage we may cut through.
  const limit = Math.min(buf.length, i + 3);
  while (i < limit && ((buf[i] as number) & 0xc0) === 0x80) i++;
  return i;
}
