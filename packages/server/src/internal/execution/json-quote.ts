/**
 * `JSON.stringify(text)` for long output text, byte for byte, about 1.6× faster on Node 20.
 *
 * V8's JSON.stringify escapes a string longer than the free room in its output buffer one
 * checked character at a time; strings that fit (a few hundred characters, once the buffer has
 * grown) take an unchecked loop. So one JSON.stringify of an array of short slices of the text
 * escapes it quickly, and only the `","` between the slices has to go (a `--cpu-prof` of a 200 MiB
 * stream had JSON.stringify of 64 KiB output chunks as the server's biggest cost).
 *
 * Escaping is per character except for surrogate pairs (a lone half is escaped as `\udXXX`), so no
 * slice ends inside a pair. And no slice ends with a comma: then every `","` in the array's JSON is
 * a boundary (an escaped quote followed by `,"` can only be content ending in `",` right before a
 * closing quote).
 */

/** Slice length: short enough for V8's fast path (≤ 6 output characters each must fit). */
const PIECE = 192;
const COMMA = 0x2c;

/** True when a slice must not end with this UTF-16 unit. */
const badEnd = (c: number): boolean => c === COMMA || (c >= 0xd800 && c <= 0xdbff);

/** Exactly `JSON.stringify(text)`. */
export function quoteJSON(text: string): string {
  if (text.length <= 2 * PIECE) return JSON.stringify(text);
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + PIECE);
    if (end < text.length) {
      while (end > start && badEnd(text.charCodeAt(end - 1))) end--;
      // A run of PIECE commas or high surrogates: rare enough to take the plain path.
      if (end === start) return JSON.stringify(text);
    }
    pieces.push(text.slice(start, end));
    start = end;
  }
  // `["a","b"]` → `"ab"`: the outer `[` and `]` go with the slice, the separators with replaceAll.
  return `"${JSON.stringify(pieces).slice(2, -2).replaceAll('","', '')}"`;
}
