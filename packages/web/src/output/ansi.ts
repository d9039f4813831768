/**
 * A streaming parser of terminal output: text with SGR colours and styles (ECMA-48 `CSI … m`),
 * line feeds, carriage returns and erase-line (`CSI K`), fed chunk by chunk (an escape sequence
 * split across chunks is completed by the next one). Other control sequences (cursor moves,
 * OSC titles and links) are dropped. It only produces tokens; the view renders them as text.
 */

/** A colour: one of the 16 named ones (0–15), or an RGB value (256-colour and truecolour codes). */
export type AnsiColour = { kind: 'named'; index: number } | { kind: 'rgb'; r: number; g: number; b: number };

/** The graphic state text is written in. */
export interface AnsiStyle {
  readonly fg: AnsiColour | null;
  readonly bg: AnsiColour | null;
  readonly bold: boolean;
  readonly dim: boolean;
  readonly italic: boolean;
  readonly underline: boolean;
  readonly inverse: boolean;
}

/** What the output says to do. */
export type AnsiToken =
  | { kind: 'text'; text: string; style: AnsiStyle }
  | { kind: 'newline' }
  | { kind: 'carriage-return' }
  /** `CSI K`: 0 from the cursor to the end, 1 to the cursor, 2 the whole line. */
  | { kind: 'erase-line'; mode: 0 | 1 | 2 };

/** The style of a fresh terminal. */
export const PLAIN: AnsiStyle = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };

/** Longest escape sequence kept waiting for its end; past it the sequence is dropped. */
const MAX_PENDING = 1024;

/** One stream's parser: its style and any unfinished escape sequence carry from chunk to chunk. */
export class AnsiParser {
  private style: AnsiStyle = PLAIN;
  private pending = '';

  /** The tokens of `chunk` (plus what an earlier chunk left unfinished). */
  feed(chunk: string): AnsiToken[] {
    const text = this.pending + chunk;
    this.pending = '';
    const out: AnsiToken[] = [];
    let run = '';
    const flush = (): void => {
      if (run !== '') out.push({ kind: 'text', text: run, style: this.style });
      run = '';
    };
    let i = 0;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x0a) {
        flush();
        out.push({ kind: 'newline' });
        i++;
      } else if (c === 0x0d) {
        flush();
        // CRLF is a line end, not a redraw.
        if (text.charCodeAt(i + 1) === 0x0a) {
          out.push({ kind: 'newline' });
          i += 2;
        } else if (i + 1 === text.length) {
          // The LF of a CRLF may be in the next chunk.
          this.pending = '\r';
          i++;
        } else {
          out.push({ kind: 'carriage-return' });
          i++;
        }
      } else if (c === 0x1b) {
        const end = sequenceEnd(text, i);
        if (end === null) {
          flush();
          const rest = text.slice(i);
          if (rest.length <= MAX_PENDING) this.pending = rest;
          break;
        }
        flush();
        this.apply(text.slice(i, end), out);
        i = end;
      } else if (c < 0x20 && c !== 0x09) {
        i++; // BEL, BS and the other C0 controls draw nothing here
      } else {
        run += text[i];
        i++;
      }
    }
    flush();
    return out;
  }

  private apply(seq: string, out: AnsiToken[]): void {
    if (seq[1] !== '[') return;
    const final = seq[seq.length - 1];
    const params = seq.slice(2, -1);
    if (final === 'm') this.style = applySGR(this.style, params);
    else if (final === 'K') {
      const n = params === '' ? 0 : Number(params);
      out.push({ kind: 'erase-line', mode: n === 1 ? 1 : n === 2 ? 2 : 0 });
    }
  }
}

/** Index just past the escape sequence starting at `i`, or null when it is not complete yet. */
function sequenceEnd(text: string, i: number): number | null {
  const kind = text[i + 1];
  if (kind === undefined) return null;
  if (kind === '[') {
    for (let j = i + 2; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c >= 0x40 && c <= 0x7e) return j + 1;
      // Not a parameter or intermediate byte: a broken sequence, ended here.
      if (c < 0x20 || c > 0x3f) return j;
    }
    return null;
  }
  if (kind === ']') {
    // OSC: ends at BEL or ST (ESC \).
    for (let j = i + 2; j < text.length; j++) {
      if (text.charCodeAt(j) === 0x07) return j + 1;
      if (text.charCodeAt(j) === 0x1b && text[j + 1] === '\\') return j + 2;
      if (text.charCodeAt(j) === 0x1b && j + 1 === text.length) return null;
    }
    return null;
  }
  return i + 2;
}

/** The style after an SGR sequence's parameters (`1;31`, `38;5;208`, `38;2;255;0;0`, ``). */
export function applySGR(style: AnsiStyle, params: string): AnsiStyle {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  let s: AnsiStyle = style;
  for (let k = 0; k < codes.length; k++) {
    const code = codes[k] ?? 0;
    if (code === 0) s = PLAIN;
    else if (code === 1) s = { ...s, bold: true };
    else if (code === 2) s = { ...s, dim: true };
    else if (code === 3) s = { ...s, italic: true };
    else if (code === 4) s = { ...s, underline: true };
    else if (code === 7) s = { ...s, inverse: true };
    else if (code === 22) s = { ...s, bold: false, dim: false };
    else if (code === 23) s = { ...s, italic: false };
    else if (code === 24) s = { ...s, underline: false };
    else if (code === 27) s = { ...s, inverse: false };
    else if (code >= 30 && code <= 37) s = { ...s, fg: { kind: 'named', index: code - 30 } };
    else if (code === 39) s = { ...s, fg: null };
    else if (code >= 40 && code <= 47) s = { ...s, bg: { kind: 'named', index: code - 40 } };
    else if (code === 49) s = { ...s, bg: null };
    else if (code >= 90 && code <= 97) s = { ...s, fg: { kind: 'named', index: code - 90 + 8 } };
    else if (code >= 100 && code <= 107) s = { ...s, bg: { kind: 'named', index: code - 100 + 8 } };
    else if (code === 38 || code === 48) {
      const [colour, used] = extendedColour(codes, k + 1);
      k += used;
      if (colour !== undefined) s = code === 38 ? { ...s, fg: colour } : { ...s, bg: colour };
    }
  }
  return s;
}

/** `5;n` or `2;r;g;b` after a 38/48: the colour and how many codes it took. */
function extendedColour(codes: number[], at: number): [AnsiColour | undefined, number] {
  const mode = codes[at];
  if (mode === 5) {
    const n = codes[at + 1];
    return [n === undefined ? undefined : colour256(n), 2];
  }
  if (mode === 2) {
    const [r, g, b] = [codes[at + 1], codes[at + 2], codes[at + 3]];
    if (r === undefined || g === undefined || b === undefined) return [undefined, 4];
    return [{ kind: 'rgb', r: byte(r), g: byte(g), b: byte(b) }, 4];
  }
  return [undefined, 0];
}

/** xterm's 256-colour palette: 16 named, a 6×6×6 cube, 24 greys. */
function colour256(n: number): AnsiColour | undefined {
  if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
  if (n < 16) return { kind: 'named', index: n };
  if (n < 232) {
    const level = (v: number): number => (v === 0 ? 0 : 55 + v * 40);
    const i = n - 16;
    return { kind: 'rgb', r: level(Math.floor(i / 36)), g: level(Math.floor(i / 6) % 6), b: level(i % 6) };
  }
  const grey = 8 + (n - 232) * 10;
  return { kind: 'rgb', r: grey, g: grey, b: grey };
}

function byte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}
