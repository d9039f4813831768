/**
 * Decodes one string field of a JSON object while the object is still being written: a tool
 * call's arguments arrive from the model in pieces (`{"code":"print(` then `1)\n"}`), and the
 * CLI shows the code as it is written, not the JSON. Escapes split across pieces wait for their
 * end; a UTF-16 surrogate pair is never split (a lone half would print as U+FFFD).
 */

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export class JSONStringField {
  private text = '';
  /** Where the field's undecoded value continues in `text`; -1 until its opening quote arrived. */
  private pos = -1;
  private finished = false;
  private heldHighSurrogate = '';
  private readonly opening: RegExp;

  constructor(key: string) {
    this.opening = new RegExp(`"${key}"\\s*:\\s*"`);
  }

  /** True once the value's closing quote arrived. */
  get done(): boolean {
    return this.finished;
  }

  /** Every piece of the object seen so far. */
  get raw(): string {
    return this.text;
  }

  /** Takes the next piece of the object's JSON; returns the newly decoded characters of the field. */
  push(piece: string): string {
    this.text += piece;
    if (this.finished) return '';
    if (this.pos < 0) {
      const m = this.opening.exec(this.text);
      if (m === null) return '';
      this.pos = m.index + m[0].length;
    }
    let out = '';
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos] ?? '';
      if (c === '"') {
        this.finished = true;
        break;
      }
      if (c !== '\\') {
        out += c;
        this.pos++;
        continue;
      }
      const e = t[this.pos + 1];
      if (e === undefined) break;
      if (e === 'u') {
        if (this.pos + 6 > t.length) break;
        out += String.fromCharCode(parseInt(t.slice(this.pos + 2, this.pos + 6), 16));
        this.pos += 6;
        continue;
      }
      out += SIMPLE_ESCAPES[e] ?? e;
      this.pos += 2;
    }
    out = this.heldHighSurrogate + out;
    this.heldHighSurrogate = '';
    const last = out.charCodeAt(out.length - 1);
    if (!this.finished && last >= 0xd800 && last <= 0xdbff) {
      this.heldHighSurrogate = out.slice(-1);
      out = out.slice(0, -1);
    }
    return out;
  }
}

/** A string field's value in a complete or partial JSON object's text, when it is already whole. */
export function completedStringField(json: string, key: string): string | undefined {
  const m = new RegExp(`"${key}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(json);
  if (m === null) return undefined;
  try {
    return JSON.parse(`"${m[1] ?? ''}"`) as string;
  } catch {
    return undefined;
  }
}
