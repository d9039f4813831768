/**
 * `JSON.stringify(text)` for long output text, byte for byte, about 1.6× faster on Node 20.
 *
 * V8's JSON.stringify escapes a string longer than the free room in its output buffer one
 * checked character at a time; strings that fit (a few hundred characters, once the buffer has
 * grown) take an unchecked loop. So one JSON.stringify of an array of short slices of the text
 * escapes it quickly, and only the `","` between the slices has to go (a `--cpu-prof` of a 200 MiB
 * stream had JSON.stringify of 64 KiB output chunks as the server's biggest cost).
 *
 * Only for one-byte text (every character ≤ U+00FF, what ASCII and Latin-1 output decode to): a
 * two-byte string gains nothing from the slices (it loses), and one-byte text holds no surrogate,
 * the one character JSON.stringify escapes by context. No slice ends with a comma: then every
 * `","` in the array's JSON is a boundary (an escaped quote followed by `,"` can only be content
 * ending in `",` right before a closing quote).
 */

/** Slice length: short enough for V8's fast path (≤ 6 output characters each must fit). */
const PIECE = 192;
const COMMA = 0x2c;
/** A character past U+00FF: V8 holds the string as two-byte. */
const WIDE = /[^\u0000-\u00ff]/;

/** Exactly `JSON.stringify(text)`. */
export function quoteJSON(text: string): string {
  // The test stops at the first wide character (a one-byte string fails it at once).
  if (text.length <= 2 * PIECE || WIDE.test(text)) return JSON.stringify(text);
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + PIECE);
    if (end < text.length) {
      while (end > start && text.charCodeAt(end - 1) === COMMA) end--;
      // PIECE commas in a row: rare enough to take the plain path.
      if (end === start) return JSON.stringify(text);
    }
    pieces.push(text.slice(start, end));
    start = end;
  }
  // `["a","b"]` → `"ab"`: the outer `[` and `]` go with the slice, the separators with replaceAll.
  return `"${JSON.stringify(pieces).slice(2, -2).replaceAll('","', '')}"`;
}
