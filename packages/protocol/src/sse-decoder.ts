/**
 * Incremental `text/event-stream` decoder implementing the WHATWG HTML rules exactly
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html, §9.2.5 "Parsing an event
 * stream" and §9.2.6 "Interpreting an event stream"). The pipeline is
 * bytes → UTF-8 text → lines → fields → messages, fed one network chunk at a time, so chunk
 * boundaries may fall anywhere: inside a multi-byte character, between the CR and LF of a
 * CRLF, or inside a field name.
 */

import { UTF8Chunks } from './utf8-chunks.js';

/** One dispatched event, as an `EventSource` would deliver it. */
export interface SSEMessage {
  /** The last event ID at dispatch time (it persists across events until an `id` field changes it). */
  id: string;
  /** The event type; `message` when the event had no (or an empty) `event` field. */
  event: string;
  /** The `data` lines joined with LF. */
  data: string;
  /** Set when this event's own lines carried a valid `retry` field (see {@link SSEDecoder.retry}). */
  retry?: number;
}

/** Memory bounds of a decoder; lengths are counted in UTF-16 code units of decoded text. */
export interface SSEDecoderOptions {
  /**
   * Longest line accepted, default {@link DEFAULT_MAX_LINE_BYTES}. A decoded line is never
   * longer in code units than its UTF-8 encoding is in bytes, so this also bounds the bytes
   * buffered for an unterminated line.
   */
  maxLineBytes?: number;
  /** Longest data buffer (all `data` lines of one event), default: the line bound. */
  maxEventBytes?: number;
}

/** Default bound on one line (and on one event's data): 64 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

const LF = 0x0a;
const SPACE = 0x20;
const BOM = 0xfeff;
const ASCII_DIGITS = /^[0-9]+$/;

/**
 * Streaming SSE parser: {@link SSEDecoder.push} each chunk as it arrives, then
 * {@link SSEDecoder.end} when the body ends. After a thrown RangeError the decoder is in an
 * unspecified state and should be discarded.
 */
export class SSEDecoder {
  private readonly maxLine: number;
  private readonly maxEvent: number;
  /** The one streaming decoder of the connection; a character split across chunks waits in it. */
  private utf8 = new UTF8Chunks();
  /** No text has been decoded yet on this stream, so a leading BOM is still to be stripped. */
  private atStreamStart = true;
  /** The previous chunk ended in CR: an LF starting the next one completes that CRLF. */
  private afterCR = false;
  /**
   * The unterminated tail of the text seen so far, in pieces (joined once, when the line ends:
   * appending each piece to one string would copy a long line once per chunk).
   */
  private partialLine: string[] = [];
  private partialLength = 0;
  /** The event's data lines joined with LF (without the spec's trailing LF: nothing to cut at dispatch). */
  private dataBuffer = '';
  /** A `data` field was seen since the last dispatch (an empty one too). */
  private hasData = false;
  private eventTypeBuffer = '';
  private lastEventIDBuffer = '';
  private lastEventIDString = '';
  private reconnectionTime: number | undefined;
  /** A valid `retry` seen since the last dispatch, reported on the next dispatched message. */
  private pendingRetry: number | undefined;

  constructor(options: SSEDecoderOptions = {}) {
    this.maxLine = checkBound(options.maxLineBytes, DEFAULT_MAX_LINE_BYTES, 'maxLineBytes');
    this.maxEvent = checkBound(options.maxEventBytes, this.maxLine, 'maxEventBytes');
  }

  /**
   * The event source's "last event ID string": updated when an event is dispatched (or would
   * be, had it data), never by an `id` line alone. Send it as `Last-Event-ID` when reconnecting.
   */
  get lastEventID(): string {
    return this.lastEventIDString;
  }

  /** The reconnection time in milliseconds from the latest valid `retry` field, if any. */
  get retry(): number | undefined {
    return this.reconnectionTime;
  }

  /**
   * Feeds one chunk and returns the events it completed. Bytes go through the streaming UTF-8
   * decoder (invalid sequences become U+FFFD); a string is taken as already-decoded text, after
   * flushing any incomplete byte sequence left by an earlier chunk as U+FFFD.
   *
   * @throws RangeError when a line or an event's data exceeds the configured bound.
   */
  push(chunk: Uint8Array | string): SSEMessage[] {
    const out: SSEMessage[] = [];
    const text = typeof chunk === 'string' ? this.utf8.flush() + chunk : this.utf8.decode(chunk);
    this.feed(text, out);
    return out;
  }

  /**
   * Ends the stream. Per §9.2.6 "once the end of the file is reached, any pending data must be
   * discarded": an event not yet terminated by a blank line is not dispatched, so this always
   * returns an empty array (it exists so both decoders have the same shape). The decoder is
   * then ready for the next connection's stream, keeping {@link lastEventID} and {@link retry}
   * as an `EventSource` does when it reconnects.
   */
  end(): SSEMessage[] {
    const out: SSEMessage[] = [];
    // Flushing turns a truncated multi-byte sequence into U+FFFD; it can only extend the
    // unterminated last line, which is discarded below, but the bound still applies.
    this.feed(this.utf8.flush(), out);
    this.utf8 = new UTF8Chunks();
    this.atStreamStart = true;
    this.afterCR = false;
    this.partialLine = [];
    this.partialLength = 0;
    this.dataBuffer = '';
    this.hasData = false;
    this.eventTypeBuffer = '';
    // The spec initialises a new stream's ID buffer to "", which would make the first event
    // of a reconnection without an `id` field forget the ID; browsers (e.g. Chromium's
    // EventSourceParser) seed it with the last event ID string instead, and so do we.
    this.lastEventIDBuffer = this.lastEventIDString;
    this.pendingRetry = undefined;
    return out;
  }

  /** Splits decoded text into lines (§9.2.5: `end-of-line = ( cr lf / cr / lf )`). */
  private feed(text: string, out: SSEMessage[]): void {
    const n = text.length;
    if (n === 0) return; // keep afterCR: the LF may still arrive in a later chunk
    let pos = 0;
    if (this.atStreamStart) {
      // "UTF-8 decode" strips one leading BOM (§9.2.5); a second one is data and poisons the
      // first field name (WPT format-bom-2). Done here rather than by TextDecoder so it holds
      // for string chunks too and does not depend on the runtime's BOM-across-chunks handling.
      this.atStreamStart = false;
      if (text.charCodeAt(0) === BOM) pos = 1;
    }
    if (this.afterCR) {
      this.afterCR = false;
      if (text.charCodeAt(pos) === LF) pos++;
    }
    // The next LF and the next CR at or after `pos`, each found once per text (n: none left),
    // so a long line is scanned once whichever terminator it ends with.
    let nextLF = -1;
    let nextCR = -1;
    while (pos < n) {
      if (nextLF < pos) nextLF = indexOrEnd(text, '\n', pos);
      if (nextCR < pos) nextCR = indexOrEnd(text, '\r', pos);
      const eol = nextLF < nextCR ? nextLF : nextCR;
      if (eol === n) {
        const tail = pos === 0 ? text : text.slice(pos);
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
      if (eol === nextCR) {
        if (eol + 1 === n) {
          // Whether this CR is half of a CRLF is only known once the next chunk arrives.
          this.afterCR = true;
          pos = n;
        } else {
          pos = text.charCodeAt(eol + 1) === LF ? eol + 2 : eol + 1;
        }
      } else {
        pos = eol + 1;
      }
      this.processLine(line, out);
    }
  }

  /** §9.2.6: blank line → dispatch; `:` → comment; otherwise a field, split at the first colon. */
  private processLine(line: string, out: SSEMessage[]): void {
    if (line.length === 0) {
      this.dispatch(out);
      return;
    }
    const colon = line.indexOf(':');
    if (colon === 0) return; // comment
    let field: string;
    let value: string;
    if (colon === -1) {
      // "the whole line as the field name, and the empty string as the field value"
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      // "If value starts with a U+0020 SPACE character, remove it" — only one, never a tab.
      value = line.charCodeAt(colon + 1) === SPACE ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    // Field names are case-sensitive; unknown names are ignored.
    switch (field) {
      case 'event':
        this.eventTypeBuffer = value;
        break;
      case 'data':
        // Counted as the spec's buffer: every line so far with its LF, and this one's.
        if ((this.hasData ? this.dataBuffer.length + 1 : 0) + value.length + 1 > this.maxEvent) {
          this.dataBuffer = '';
          this.hasData = false;
          throw new RangeError(`SSE event data is longer than ${this.maxEvent} characters (maxEventBytes)`);
        }
        // The spec appends value + LF and cuts the last LF at dispatch; joining with LF is the
        // same text without copying a long single line twice.
        if (this.hasData) this.dataBuffer += `\n${value}`;
        else this.dataBuffer = value;
        this.hasData = true;
        break;
      case 'id':
        // An id containing NUL is ignored, so it can always be sent back in a header.
        if (!value.includes('\0')) this.lastEventIDBuffer = value;
        break;
      case 'retry':
        // "If the field value consists of only ASCII digits" (at least one: WPT
        // format-field-retry-empty); base ten, so leading zeros are fine. Values beyond
        // Number.MAX_SAFE_INTEGER cannot be represented exactly and are ignored.
        if (ASCII_DIGITS.test(value)) {
          const ms = Number(value);
          if (Number.isSafeInteger(ms)) {
            this.reconnectionTime = ms;
            this.pendingRetry = ms;
          }
        }
        break;
      default:
        break;
    }
  }

  /** §9.2.6 "dispatch the event". */
  private dispatch(out: SSEMessage[]): void {
    // Step 1 happens even when nothing is dispatched: an `id`-only block updates the ID.
    this.lastEventIDString = this.lastEventIDBuffer;
    const retry = this.pendingRetry;
    this.pendingRetry = undefined;
    if (!this.hasData) {
      this.eventTypeBuffer = '';
      return;
    }
    const data = this.dataBuffer;
    const msg: SSEMessage = {
      id: this.lastEventIDString,
      event: this.eventTypeBuffer.length > 0 ? this.eventTypeBuffer : 'message',
      data,
    };
    if (retry !== undefined) msg.retry = retry;
    this.dataBuffer = '';
    this.hasData = false;
    this.eventTypeBuffer = '';
    out.push(msg);
  }

  private lineTooLong(): never {
    this.partialLine = []; // release the memory before reporting
    this.partialLength = 0;
    throw new RangeError(`SSE line is longer than ${this.maxLine} characters (maxLineBytes); refusing to buffer it`);
  }
}

/** Byte sources the stream helpers accept: a fetch body, a Node stream, any async iterable. */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

/**
 * Decodes a whole SSE body, yielding each event as it completes. Breaking out of the loop,
 * an error, or aborting `signal` cancels the body (closing the connection); on abort the
 * generator rejects with `signal.reason`, as `fetch` does, so an aborted stream is never
 * mistaken for one that ended.
 */
export async function* decodeSSEStream(
  body: ByteSource,
  signal?: AbortSignal,
  options?: SSEDecoderOptions,
): AsyncGenerator<SSEMessage, void, undefined> {
  const decoder = new SSEDecoder(options);
  for await (const chunk of readChunks(body, signal)) yield* decoder.push(chunk);
  yield* decoder.end();
}

/**
 * Iterates the chunks of a `ReadableStream` or async iterable. Stops with `signal.reason` when
 * `signal` aborts, even while waiting for a chunk; on every exit (end, break, error, abort) a
 * stream reader is cancelled unless the stream ended, and its lock released.
 */
export async function* readChunks(body: ByteSource, signal?: AbortSignal): AsyncGenerator<Uint8Array | string, void, undefined> {
  signal?.throwIfAborted();
  if (isReadableStream(body)) {
    yield* readStream(body, signal);
  } else {
    yield* readIterable(body, signal);
  }
}

function isReadableStream(body: ByteSource): body is ReadableStream<Uint8Array> {
  return typeof (body as Partial<ReadableStream<Uint8Array>>).getReader === 'function';
}

async function* readStream(body: ReadableStream<Uint8Array>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  // Cancelling settles a pending read() at once (done: true), which is how an abort
  // interrupts a read that would otherwise wait for the network.
  const onAbort = (): void => {
    reader.cancel(signal?.reason).catch(ignore);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let ended = false;
  try {
    for (;;) {
      const result = await reader.read();
      signal?.throwIfAborted();
      if (result.done) {
        ended = true;
        return;
      }
      yield result.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // The consumer stopped early or something failed: tell the source we will read no more.
    if (!ended) reader.cancel().catch(ignore);
    reader.releaseLock();
  }
}

async function* readIterable(body: AsyncIterable<Uint8Array | string>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array | string> {
  if (signal === undefined) {
    // yield* forwards an early return() to the source iterator itself.
    yield* body;
    return;
  }
  const it = body[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(ignore); // only ever observed through Promise.race
  let ended = false;
  try {
    for (;;) {
      const pending = it.next();
      pending.catch(ignore); // if the abort wins the race, a later rejection must not go unhandled
      const result = await Promise.race([pending, aborted]);
      if (result.done === true) {
        ended = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    // Not awaited: an async generator queues return() behind a pending next(), which an
    // abort may have left hanging.
    if (!ended) it.return?.()?.catch(ignore);
  }
}

/** Index of `char` in `text` at or after `from`, or `text.length`. */
function indexOrEnd(text: string, char: string, from: number): number {
  const i = text.indexOf(char, from);
  return i === -1 ? text.length : i;
}

/** Validates an optional size bound. */
function checkBound(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function ignore(): void {}
