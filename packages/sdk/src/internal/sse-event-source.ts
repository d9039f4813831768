/**
 * One log's events over Server-Sent Events, resumed across dropped connections: the one SSE
 * reader of the SDK, for executions (sse-execution-source.ts) and agent runs
 * (sse-agent-source.ts) alike; an {@link SSELog} says which endpoints and which event union.
 *
 * The stream starts with a POST carrying an `Idempotency-Key`, so a start retried after a
 * network failure answers with the same log instead of starting the work twice. Once the log's id
 * is known (a response header, or the first event), a lost connection is resumed with
 * `GET …/events` and `Last-Event-ID: <last seq delivered>`; overlaps are dropped by seq. A body
 * that ends before the last event, a network error, or silence longer than `heartbeatTimeoutMs`
 * (the server sends `: ping` every 15 s) counts as a lost connection.
 *
 * Backpressure: the body is read only when the consumer asks for the next event, one network
 * chunk at a time, so a slow consumer leaves the bytes in the socket and TCP slows the server's
 * writer down; nothing here grows with the output.
 */
import { SSEDecoder, type Validated } from '@sluice/protocol';
import { ConnectionError, InternalError, isAbortError, SluiceError, TimeoutError } from '../errors.js';
import { deferred, sleep } from './abort.js';
import { backoffDelay, type ReconnectPolicy } from './backoff.js';
import type { HTTPClient } from './http-client.js';
import { SeqCursor } from './seq-cursor.js';

/** What every streamed log's events have. */
export interface LogEvent {
  readonly type: string;
  readonly seq: number;
}

/** Which log a source reads: its event union, where it starts and resumes, how its id is named. */
export interface SSELog<E extends LogEvent> {
  /** What the log belongs to, for messages: `execution`, `agent run`. */
  noun: string;
  /** Validates one decoded `data:` payload. */
  parse(json: unknown): Validated<E>;
  /** The id an event names (the log's first one does), else undefined. */
  idOf(ev: E): string | undefined;
  /** True for the log's final event (`done`, `end`). */
  isLast(ev: E): boolean;
  /** The start's answer header that names the id (lowercase). */
  idHeader: string;
  /** The path of the log's events, to resume from. */
  eventsPath(id: string): string;
}

/** Where a stream begins: a POST that starts the work, or a log that exists, from seq `from` (inclusive). */
export type SSEStreamStart = { kind: 'start'; path: string; body: unknown; idempotencyKey: string } | { kind: 'attach'; id: string; from: number };

export interface SSESourceOptions {
  reconnect: ReconnectPolicy;
  /** Longest silence on an open stream before it is taken for dead and resumed, milliseconds. */
  heartbeatTimeoutMs: number;
  /** Deadline of the commands (cancel, stdin), milliseconds. */
  commandTimeoutMs: number;
  random?: () => number;
}

/** Longest SSE line accepted: an event holds at most 64 KiB of output, ≤ 6× that once JSON-escaped. */
const MAX_LINE_CHARS = 4 * 1024 * 1024;

/** Reads one log over SSE (see the module comment); `next()` yields each event once, in order. */
export class SSEEventSource<E extends LogEvent> {
  /** The log's id, as soon as the server names it. */
  readonly logID: Promise<string>;
  protected readonly id = deferred<string>();
  private readonly cursor: SeqCursor;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private connection: AbortController | undefined;
  private decoder = new SSEDecoder({ maxLineBytes: MAX_LINE_CHARS });
  /** Complete events of the last chunk read, not delivered yet (bounded by one chunk). */
  private pending: E[] = [];
  /** Consecutive connection failures since an event was last delivered. */
  private failures = 0;
  private lastFailure: unknown;
  private ended = false;
  private readonly closed = new AbortController();

  constructor(
    protected readonly http: HTTPClient,
    private readonly start: SSEStreamStart,
    protected readonly opts: SSESourceOptions,
    private readonly log: SSELog<E>,
  ) {
    this.logID = this.id.promise;
    this.cursor = new SeqCursor(start.kind === 'attach' ? Math.max(0, start.from - 1) : 0);
    if (start.kind === 'attach') this.id.resolve(start.id);
  }

  /**
   * The next event not delivered yet, or null once the log is over (after its last event) or
   * the source was closed. Rejects with a typed error when the log cannot be followed any more.
   */
  async next(): Promise<E | null> {
    try {
      return await this.pull();
    } catch (err: unknown) {
      if (this.closed.signal.aborted) return null;
      this.ended = true;
      this.release();
      if (!this.id.settled) this.id.reject(err);
      throw err;
    }
  }

  private async pull(): Promise<E | null> {
    for (;;) {
      if (this.closed.signal.aborted) return null;
      const ev = this.pending.shift();
      if (ev !== undefined) {
        if (!this.cursor.accept(ev.seq)) continue;
        this.failures = 0;
        if (!this.id.settled) {
          const id = this.log.idOf(ev);
          if (id !== undefined) this.id.resolve(id);
        }
        if (this.log.isLast(ev)) {
          this.ended = true;
          this.release();
        }
        return ev;
      }
      if (this.ended) return null;
      if (this.reader === undefined) {
        await this.connect();
        continue;
      }
      const chunk = await this.read(this.reader);
      if (chunk === null) {
        this.lose();
        continue;
      }
      this.decode(chunk);
    }
  }

  /** Releases the connection and every timer; no effect on the log's work. Idempotent. */
  close(): void {
    if (this.closed.signal.aborted) return;
    this.closed.abort();
    this.release();
    this.pending = [];
    if (!this.id.settled) this.id.reject(new ConnectionError(`the stream was closed before the server named its ${this.log.noun}`));
  }

  /** Opens a connection, retrying with backoff; leaves `reader` set, or `ended` after a 204. */
  private async connect(): Promise<void> {
    for (;;) {
      if (this.failures > 0) {
        if (this.failures > this.opts.reconnect.maxAttempts) throw this.givenUp();
        const retryAfter = this.lastFailure instanceof SluiceError ? retryAfterOf(this.lastFailure) : undefined;
        await sleep(backoffDelay(this.failures, this.opts.reconnect, this.opts.random, retryAfter), this.closed.signal);
      }
      try {
        const res = await this.open();
        if (res === null) {
          this.ended = true;
          return;
        }
        this.reader = res;
        return;
      } catch (err: unknown) {
        if (this.closed.signal.aborted || !isRetryable(err)) throw err;
        this.failures++;
        this.lastFailure = err;
      }
    }
  }

  /** One connection attempt: the start (until the log has an id) or a resume. */
  private async open(): Promise<ReadableStreamDefaultReader<Uint8Array> | null> {
    const connection = new AbortController();
    this.connection = connection;
    const signal = connection.signal;
    // Only the answer's head has a deadline here; the body may be quiet as long as heartbeats come.
    const timeoutMs = this.opts.heartbeatTimeoutMs;
    let res: Response;
    if (!this.id.settled && this.start.kind === 'start') {
      const { path, body, idempotencyKey } = this.start;
      res = await this.http.request('POST', path, {
        json: body,
        headers: { accept: 'text/event-stream', 'idempotency-key': idempotencyKey },
        signal,
        timeoutMs,
      });
      const id = res.headers.get(this.log.idHeader);
      if (id !== null && id !== '') this.id.resolve(id);
      // A retried start replays the log from seq 1: the cursor drops what was delivered.
    } else {
      const id = await this.logID;
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.cursor.last > 0) headers['last-event-id'] = String(this.cursor.last);
      res = await this.http.request('GET', this.log.eventsPath(id), { headers, signal, timeoutMs, accept: [204] });
      // 204: the log is over and nothing follows what was delivered.
      if (res.status === 204) return null;
    }
    if (res.body === null) throw new ConnectionError('the stream answer has no body');
    this.decoder.end();
    return res.body.getReader();
  }

  /** The next chunk, or null when the connection is lost (ended early, failed, or went silent). */
  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Uint8Array | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<'silent'>((resolve) => {
      timer = setTimeout(() => resolve('silent'), this.opts.heartbeatTimeoutMs);
    });
    const read = reader.read();
    read.catch(() => {}); // settled by the cancel in release() when silence wins the race
    try {
      const r = await Promise.race([read, silent]);
      if (r === 'silent') {
        this.lastFailure = new TimeoutError(`no data and no heartbeat for ${this.opts.heartbeatTimeoutMs} ms (heartbeatTimeoutMs)`);
        return null;
      }
      if (r.done) {
        this.lastFailure = new ConnectionError(`the stream ended before the ${this.log.noun} was over`);
        return null;
      }
      return r.value;
    } catch (err: unknown) {
      this.lastFailure = err;
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Parses the events a chunk completed into `pending`; a malformed one is the server's bug. */
  private decode(chunk: Uint8Array): void {
    let messages;
    try {
      messages = this.decoder.push(chunk);
    } catch (err: unknown) {
      throw new InternalError(`the event stream is malformed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    for (const msg of messages) {
      if (msg.data === '') continue;
      let json: unknown;
      try {
        json = JSON.parse(msg.data);
      } catch (err: unknown) {
        throw new InternalError(`an event is not JSON: ${msg.data.slice(0, 120)}`, { cause: err });
      }
      const parsed = this.log.parse(json);
      if (!parsed.ok) throw new InternalError(`an event is malformed: ${parsed.message}`);
      this.pending.push(parsed.value);
    }
  }

  private lose(): void {
    this.failures++;
    this.release();
  }

  private release(): void {
    this.connection?.abort();
    this.connection = undefined;
    const reader = this.reader;
    this.reader = undefined;
    if (reader) reader.cancel().catch(() => {});
  }

  private givenUp(): ConnectionError {
    const cause = this.lastFailure;
    const why = cause instanceof Error ? cause.message : String(cause);
    const what = this.start.kind === 'attach' ? `${this.log.noun} ${this.start.id}` : `the ${this.log.noun}`;
    const attempts = this.opts.reconnect.maxAttempts;
    return new ConnectionError(`lost the stream of ${what} after ${attempts} reconnection attempt${attempts === 1 ? '' : 's'} (reconnect.maxAttempts): ${why}`, { cause });
  }
}

/** Worth another attempt: the network, a silent connection, or a gateway/overload status. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectionError || err instanceof TimeoutError) return true;
  // The server already retried the model endpoint before answering LLM_UNAVAILABLE.
  if (err instanceof SluiceError) return err.code !== 'LLM_UNAVAILABLE' && (err.status === 502 || err.status === 503 || err.status === 504);
  return !isAbortError(err) && err instanceof TypeError;
}

function retryAfterOf(err: SluiceError): number | undefined {
  const v = (err as { retryAfter?: unknown }).retryAfter;
  return typeof v === 'number' ? v : undefined;
}
