/**
 * Newline-delimited JSON (one JSON text per LF-terminated line), the streaming transport for
 * clients that do not speak SSE. Decoding is incremental like {@link SSEDecoder}: chunks may
 * split lines and multi-byte characters anywhere.
 */
import { DEFAULT_MAX_LINE_BYTES, readChunks, type ByteSource } from './sse-decoder.js';
import { UTF8Chunks } from './utf8-chunks.js';

/**
 * Frames one event as an NDJSON line. Like `encodeEventSSE`, this is a hot path that trusts its
 * input: `json` must come from `JSON.stringify`, which escapes every control character, so it
 * never contains a raw LF that would split the line.
 */
export function encodeEventNDJSON(json: string): string {
  return `${json}\n`;
}

/** Memory bound of an {@link NDJSONDecoder}. */
export interface NDJSONDecoderOptions {
  /**
   * Longest line accepted, in UTF-16 code units of decoded text (never more than its UTF-8
   * bytes), default {@link DEFAULT_MAX_LINE_BYTES}.
   */
  maxLineBytes?: number;
}

const LF = '\n';
const CR = 0x0d;
const BOM = 0xfeff;

/**
 * Streaming NDJSON parser: {@link NDJSONDecoder.push} chunks, then {@link NDJSONDecoder.end}.
 * Lines end with LF; a CR before it is tolerated (CRLF), blank and whitespace-only lines are
 * skipped, and one leading UTF-8 BOM is stripped. After a thrown error the decoder should be
 * discarded.
 */
export class NDJSONDecoder {
  private readonly maxLine: number;
  private utf8 = new UTF8Chunks();
  private atStreamStart = true;
  /** The unterminated last line, in pieces: joined once when it ends, not copied per chunk. */
  private partialLine: string[] = [];
  private partialLength = 0;
  /** Lines completed so far, blank ones included, so errors point at the right line. */
  private lineNumber = 0;

  constructor(options: NDJSONDecoderOptions = {}) {
    const max = options.maxLineBytes;
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${String(max)}`);
    }
    this.maxLine = max ?? DEFAULT_MAX_LINE_BYTES;
  }

  /**
   * Feeds one chunk and returns the values of the lines it completed. Invalid UTF-8 becomes
   * U+FFFD (and then usually a JSON syntax error); a string chunk is taken as decoded text.
   *
   * @throws SyntaxError naming the 1-based line number when a line is not valid JSON.
   * @throws RangeError when a line exceeds the bound.
   */
  push(chunk: Uint8Array | string): unknown[] {
    const out: unknown[] = [];
    const text = typeof chunk === 'string' ? this.utf8.flush() + chunk : this.utf8.decode(chunk);
    this.feed(text, out);
    return out;
  }

  /**
   * Ends the stream: a last line without a trailing LF is still parsed (many producers omit
   * it), so a body cut off mid-line surfaces as a SyntaxError. The decoder is then reset for a
   * new stream.
   */
  end(): unknown[] {
    const out: unknown[] = [];
    this.feed(this.utf8.flush(), out);
    const last = this.partialLine.join('');
    this.partialLine = [];
    this.partialLength = 0;
    if (last.length > 0) this.parseLine(last, this.lineNumber + 1, out);
    this.utf8 = new UTF8Chunks();
    this.atStreamStart = true;
    this.lineNumber = 0;
    return out;
  }

  private feed(text: string, out: unknown[]): void {
    const n = text.length;
    if (n === 0) return;
    let pos = 0;
    if (this.atStreamStart) {
      this.atStreamStart = false;
      if (text.charCodeAt(0) === BOM) pos = 1;
    }
    while (pos < n) {
      const eol = text.indexOf(LF, pos);
      if (eol === -1) {
        const tail = text.slice(pos);
        if (this.partialLength + tail.length > this.maxLine) this.lineTooLong();
        this.partialLine.push(tail);
        this.partialLength += tail.length;
        return;
      }
      let line = text.slice(pos, eol);
      if (this.partialLength > 0) {
        this.partialLine.push(line);
        line = this.partialLine.join('');
        this.partialLine = [];
        this.partialLength = 0;
      }
      if (line.length > this.maxLine) this.lineTooLong();
      pos = eol + 1;
      this.lineNumber++;
      this.parseLine(line, this.lineNumber, out);
    }
  }

  private parseLine(line: string, lineNumber: number, out: unknown[]): void {
    const end = line.charCodeAt(line.length - 1) === CR ? line.length - 1 : line.length;
    if (isBlank(line, end)) return;
    const json = end === line.length ? line : line.slice(0, end);
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err: unknown) {
      const reason = err instanceof Error ? err.message : String(err);
      const shown = json.length > 60 ? `${json.slice(0, 60)}…` : json;
      throw new SyntaxError(`NDJSON line ${lineNumber} is not valid JSON (${reason}): ${JSON.stringify(shown)}`, { cause: err });
    }
    out.push(value);
  }

  private lineTooLong(): never {
    const n = this.lineNumber + 1;
    this.partialLine = []; // release the memory before reporting
    this.partialLength = 0;
    throw new RangeError(`NDJSON line ${n} is longer than ${this.maxLine} characters (maxLineBytes); refusing to buffer it`);
  }
}

/** True when `line[0, end)` holds only JSON whitespace (space, tab, CR). */
function isBlank(line: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = line.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

/**
 * Decodes a whole NDJSON body, yielding each parsed value. Breaking out, an error, or aborting
 * `signal` cancels the body; on abort the generator rejects with `signal.reason`. Values are
 * `unknown`: narrow them with `parseExecutionEvent`.
 */
export async function* decodeNDJSONStream(
  body: ByteSource,
  signal?: AbortSignal,
  options?: NDJSONDecoderOptions,
): AsyncGenerator<unknown, void, undefined> {
  const decoder = new NDJSONDecoder(options);
  for await (const chunk of readChunks(body, signal)) yield* decoder.push(chunk);
  yield* decoder.end();
}
