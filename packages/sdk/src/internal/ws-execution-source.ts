/**
 * One execution's events on a session's shared WebSocket (ws-connection.ts routes them here by
 * `execution_id`).
 *
 * A socket cannot be read at the pace of one of the streams it carries, so each stream has a
 * bounded queue with this overflow policy: when the queue is full, the stream `unsubscribe`s
 * and drops what still arrives; once the consumer has drained the queue to half, it `subscribe`s
 * again from the first seq it has not queued. The server keeps the log, so nothing is lost and
 * memory stays bounded by the queue limits, whatever the program prints and however slowly the
 * caller reads.
 */
import { assertNever, type CancelMessage, type ClientMessage, type ExecutionEvent, type RunRequest, type StdinMessage, type SubscribeMessage } from '@sluice/protocol';
import { ConnectionError } from '../errors.js';
import { deferred, type Deferred } from './abort.js';
import type { ExecutionEventSource } from './event-source.js';
import { SeqCursor } from './seq-cursor.js';
import { sendStdin } from './stdin-pieces.js';

/** Bounds of one stream's queue of received, undelivered events. */
export interface WSQueueLimits {
  maxEvents: number;
  /** Approximate memory of the queued events (output text counted at 2 bytes a character). */
  maxBytes: number;
}

export const DEFAULT_WS_QUEUE: WSQueueLimits = { maxEvents: 1024, maxBytes: 8 * 1024 * 1024 };

/** What a stream needs from its socket. */
export interface WSChannel {
  /** Sends now if the socket is open; otherwise drops it (a reopened socket renews every subscription). */
  sendIfOpen(message: ClientMessage): void;
  /** Subscribes the stream from its next seq, if the socket is open (a refusal fails the stream). */
  subscribe(source: WSExecutionSource): void;
  /**
   * Sends a command about an execution (`cancel`, `stdin`) once the socket is open; resolves when
   * the server has taken it, rejects with the typed error it answered or a ConnectionError.
   */
  command(message: CancelMessage | StdinMessage): Promise<void>;
  /** The stream learned its execution id (its `accepted`). */
  bound(source: WSExecutionSource): void;
  /** The stream will take no more events (done, failed, or closed by its consumer). */
  release(source: WSExecutionSource): void;
}

export type WSStart = { kind: 'run'; requestID: string; body: RunRequest } | { kind: 'attach'; executionID: string; from: number };

export class WSExecutionSource implements ExecutionEventSource {
  readonly executionID: Promise<string>;
  private readonly id = deferred<string>();
  private knownID: string | undefined;
  /** The last seq queued: what a (re)subscription continues after. */
  readonly cursor: SeqCursor;
  private queue: ExecutionEvent[] = [];
  private queuedBytes = 0;
  private peakBytes = 0;
  private peakEvents = 0;
  /** Unsubscribed because the queue was full; subscribes again once drained. */
  paused = false;
  /** The `execute` went out on a socket (it is never sent twice). */
  executeSent = false;
  private receivedDone = false;
  private deliveredDone = false;
  private failure: unknown;
  private closed = false;
  private waiter: Deferred<void> | undefined;

  constructor(
    private readonly channel: WSChannel,
    readonly start: WSStart,
    private readonly limits: WSQueueLimits,
  ) {
    this.executionID = this.id.promise;
    this.cursor = new SeqCursor(start.kind === 'attach' ? Math.max(0, start.from - 1) : 0);
    if (start.kind === 'attach') this.bind(start.executionID);
  }

  /** The execution id once known. */
  get boundID(): string | undefined {
    return this.knownID;
  }

  /** Still wants events from the server. */
  get live(): boolean {
    return !this.closed && !this.receivedDone && this.failure === undefined;
  }

  /** Highest queue length and memory seen (tests check the bound). */
  get peak(): { events: number; bytes: number } {
    return { events: this.peakEvents, bytes: this.peakBytes };
  }

  /** The `subscribe` that continues this stream where its queue ends. */
  subscribeMessage(): SubscribeMessage | undefined {
    if (this.knownID === undefined) return undefined;
    return { type: 'subscribe', execution_id: this.knownID, from: this.cursor.next };
  }

  bind(executionID: string): void {
    if (this.knownID !== undefined) return;
    this.knownID = executionID;
    this.id.resolve(executionID);
    this.channel.bound(this);
  }

  /** An event for this execution arrived on the socket. */
  push(ev: ExecutionEvent): void {
    if (!this.live || this.paused) return;
    // Only the next seq: a duplicate, or an event of an older subscription overtaking the
    // replay of a newer one, is dropped; the current subscription delivers it in order.
    if (!this.cursor.follows(ev.seq, ev.type === 'gap' ? ev.from_seq : undefined)) return;
    if (this.queue.length >= this.limits.maxEvents || this.queuedBytes >= this.limits.maxBytes) {
      // Full: stop the flow; this event and those in flight are fetched again on resume.
      this.paused = true;
      if (this.knownID !== undefined) this.channel.sendIfOpen({ type: 'unsubscribe', execution_id: this.knownID });
      return;
    }
    this.cursor.advance(ev.seq);
    this.queue.push(ev);
    this.queuedBytes += approximateSize(ev);
    this.peakEvents = Math.max(this.peakEvents, this.queue.length);
    this.peakBytes = Math.max(this.peakBytes, this.queuedBytes);
    if (ev.type === 'start') this.bind(ev.execution_id);
    if (ev.type === 'done') {
      this.receivedDone = true;
      this.channel.release(this);
    }
    this.wake();
  }

  /** The server says nothing more will come (a subscribe past the end of a finished log). */
  end(): void {
    if (!this.live) return;
    this.receivedDone = true;
    this.channel.release(this);
    this.wake();
  }

  /** The execution cannot be followed on this socket any more. */
  fail(err: unknown): void {
    if (!this.live) return;
    this.failure = err;
    if (!this.id.settled) this.id.reject(err);
    this.channel.release(this);
    this.wake();
  }

  async next(): Promise<ExecutionEvent | null> {
    for (;;) {
      if (this.closed || this.deliveredDone) return null;
      const ev = this.queue.shift();
      if (ev !== undefined) {
        this.queuedBytes -= approximateSize(ev);
        if (this.paused && this.queue.length <= this.limits.maxEvents / 2 && this.queuedBytes <= this.limits.maxBytes / 2) {
          this.paused = false;
          this.channel.subscribe(this);
        }
        if (ev.type === 'done') this.deliveredDone = true;
        return ev;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.receivedDone) return null;
      this.waiter = deferred<void>();
      await this.waiter.promise;
    }
  }

  async cancel(): Promise<void> {
    const id = await this.executionID;
    await this.channel.command({ type: 'cancel', execution_id: id });
  }

  async stdin(data: string, eof: boolean): Promise<void> {
    const id = await this.executionID;
    // In pieces: a message over the server's frame limit would close the whole socket
    // (MESSAGE_TOO_BIG) and every stream on it.
    await sendStdin(data, eof, (part, end) => this.channel.command({ type: 'stdin', execution_id: id, data: part, eof: end }));
  }

  close(): void {
    if (this.closed) return;
    const wasLive = this.live;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    if (!this.id.settled) this.id.reject(new ConnectionError('the stream was closed before the server named its execution'));
    if (wasLive) {
      if (this.knownID !== undefined && !this.paused) this.channel.sendIfOpen({ type: 'unsubscribe', execution_id: this.knownID });
    }
    this.channel.release(this);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }
}

/** Rough memory of a queued event: its text at 2 bytes a character, plus the object. */
export function approximateSize(ev: ExecutionEvent): number {
  switch (ev.type) {
    case 'stdout':
    case 'stderr':
      return 64 + ev.content.length * 2;
    case 'result':
      // A result can be a megabyte of base64 PNG: count its data, not a flat guess.
      return 256 + (JSON.stringify(ev.data)?.length ?? 0) * 2;
    case 'progress':
      return 256 + (ev.message?.length ?? 0) * 2 + (ev.data === undefined ? 0 : (JSON.stringify(ev.data)?.length ?? 0) * 2);
    case 'error':
      return 256 + ev.error.length * 2;
    case 'start':
    case 'truncated':
    case 'gap':
    case 'done':
      return 256;
    default:
      return assertNever(ev, 'event');
  }
}

