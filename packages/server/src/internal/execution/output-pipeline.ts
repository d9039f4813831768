/**
 * Turns the raw bytes a program writes into output events, stdout and stderr kept in the order
 * read, never cut inside a UTF-8 character, and bounded by the execution's output limit.
 *
 * Coalescing batches only under load: a write that ends a line after a quiet spell (nothing
 * emitted for `flushMs`) is emitted at once, so a lone line reaches the log with no timer delay;
 * a partial line waits up to `flushMs` for the rest of it; bytes that follow an emit within
 * `flushMs` wait for the rest of that window (or `chunkBytes`), so a flood of small writes
 * becomes at most one event per window and stream, as large as it can be.
 *
 * Overflow policy: the first `limit - tailBytes` bytes stream live (the head). Past that, bytes
 * go into a ring of `tailBytes` that drops its oldest bytes as new ones arrive; when the program
 * ends, one `truncated` event per stream that lost bytes is followed by the kept tail. Memory is
 * bounded by the tail ring plus one pending chunk, however much the program prints.
 */
import type { OutputStream } from '@sluice/protocol';
import { nextCharStart, utf8Boundary } from './utf8-boundary.js';

export interface OutputSink {
  chunk(stream: OutputStream, content: string): void;
  truncated(stream: OutputStream, droppedBytes: number): void;
}

export interface OutputPipelineOptions {
  /** Total output bytes kept (head + tail). */
  limitBytes: number;
  /** Largest chunk in one event. */
  chunkBytes?: number;
  /** Emits at most one event per this many ms (a full chunk excepted); output after a quiet spell goes at once. */
  flushMs?: number;
  /** Bytes of the end of the output kept once the head is full. */
  tailBytes?: number;
}

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;

export class OutputPipeline {
  private readonly chunkBytes: number;
  private readonly flushMs: number;
  private readonly tailLimit: number;
  private headRemaining: number;
  private pendingStream: OutputStream | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  /** performance.now() of the last emit (-Infinity: none yet, the first write goes at once). */
  private lastEmitAt = -Infinity;
  private readonly carry: Record<OutputStream, Buffer> = { stdout: EMPTY, stderr: EMPTY };
  private tailMode = false;
  private tail: { stream: OutputStream; buf: Buffer }[] = [];
  private tailSize = 0;
  private readonly dropped: Record<OutputStream, number> = { stdout: 0, stderr: 0 };
  private finished = false;
  /** Every byte the program wrote, kept or not. */
  totalBytes = 0;

  constructor(
    private readonly sink: OutputSink,
    opts: OutputPipelineOptions,
  ) {
    this.chunkBytes = Math.max(4, opts.chunkBytes ?? 64 * 1024);
    this.flushMs = opts.flushMs ?? 3;
    this.tailLimit = Math.min(opts.tailBytes ?? Math.min(1024 * 1024, Math.floor(opts.limitBytes / 4)), opts.limitBytes);
    this.headRemaining = opts.limitBytes - this.tailLimit;
  }

  /** Takes bytes the program wrote on one stream. */
  write(stream: OutputStream, chunk: Buffer): void {
    if (this.finished || chunk.length === 0) return;
    this.totalBytes += chunk.length;
    if (this.tailMode) return this.pushTail(stream, chunk);
    if (this.pendingStream !== null && this.pendingStream !== stream) this.flush();
    this.pendingStream = stream;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.chunkBytes) return this.flush();
    const now = performance.now();
    const quiet = now >= this.lastEmitAt + this.flushMs;
    // A whole line after a quiet spell goes at once. A partial line waits a window for the
    // rest (print() writes a line's text and its newline in two writes).
    if (quiet && chunk[chunk.length - 1] === LF) return this.flush();
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.flush(), quiet ? this.flushMs : this.lastEmitAt + this.flushMs - now);
  }

  /** Emits whatever is pending now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const stream = this.pendingStream;
    if (stream === null) return;
    this.lastEmitAt = performance.now();
    const carry = this.carry[stream];
    // One read and no carried partial character (the usual case): no copy.
    const data = carry.length === 0 && this.pending.length === 1 && this.pending[0] ? this.pending[0] : Buffer.concat([carry, ...this.pending]);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingStream = null;
    this.carry[stream] = EMPTY;
    if (data.length > this.headRemaining) {
      // The head is full: emit up to the limit, everything after goes to the tail ring.
      const cut = utf8Boundary(data, this.headRemaining);
      this.emit(stream, data.subarray(0, cut));
      this.headRemaining = 0;
      this.tailMode = true;
      const other: OutputStream = stream === 'stdout' ? 'stderr' : 'stdout';
      if (this.carry[other].length > 0) this.pushTail(other, this.carry[other]);
      this.carry[other] = EMPTY;
      this.pushTail(stream, data.subarray(cut));
      return;
    }
    const end = utf8Boundary(data);
    this.carry[stream] = data.subarray(end);
    this.headRemaining -= end;
    this.emit(stream, data.subarray(0, end));
  }

  /** Flushes everything, reports truncation and emits the tail. Call once, when the program is gone. */
  finish(): void {
    if (this.finished) return;
    this.flush();
    this.finished = true;
    if (!this.tailMode) {
      // A lone incomplete character at the very end is garbage now: decode it as U+FFFD.
      for (const s of ['stdout', 'stderr'] as const) {
        if (this.carry[s].length > 0) this.sink.chunk(s, this.carry[s].toString('utf8'));
        this.carry[s] = EMPTY;
      }
      return;
    }
    for (const s of ['stdout', 'stderr'] as const) if (this.dropped[s] > 0) this.sink.truncated(s, this.dropped[s]);
    // Merge consecutive pieces of one stream so the tail comes out in few, whole-character chunks.
    let run: Buffer[] = [];
    let runStream: OutputStream | null = null;
    const flushRun = (): void => {
      if (runStream !== null && run.length > 0) this.emit(runStream, Buffer.concat(run));
      run = [];
    };
    for (const piece of this.tail) {
      if (piece.stream !== runStream) {
        flushRun();
        runStream = piece.stream;
      }
      run.push(piece.buf);
    }
    flushRun();
    this.tail = [];
    this.tailSize = 0;
  }

  /** Bytes dropped from the middle so far, per stream. */
  get droppedBytes(): Readonly<Record<OutputStream, number>> {
    return this.dropped;
  }

  private pushTail(stream: OutputStream, buf: Buffer): void {
    if (buf.length === 0) return;
    this.tail.push({ stream, buf });
    this.tailSize += buf.length;
    while (this.tailSize > this.tailLimit) {
      const front = this.tail[0];
      if (!front) break;
      const excess = this.tailSize - this.tailLimit;
      if (front.buf.length <= excess) {
        this.tail.shift();
        this.tailSize -= front.buf.length;
        this.dropped[front.stream] += front.buf.length;
        continue;
      }
      // Cut the oldest piece at a character start so the kept tail decodes cleanly.
      const k = nextCharStart(front.buf, excess);
      front.buf = front.buf.subarray(k);
      this.tailSize -= k;
      this.dropped[front.stream] += k;
    }
  }

  /** Emits bytes that end on a character boundary, in pieces of at most chunkBytes. */
  private emit(stream: OutputStream, data: Buffer): void {
    let start = 0;
    while (start < data.length) {
      let end = Math.min(data.length, start + this.chunkBytes);
      if (end < data.length) {
        const cut = utf8Boundary(data, end);
        if (cut > start) end = cut;
      }
      this.sink.chunk(stream, data.subarray(start, end).toString('utf8'));
      start = end;
    }
  }
}
