/**
 * The ordered, bounded log of one execution. Events get `seq` 1..n and are serialised to JSON
 * once, when appended; every reader (SSE, NDJSON, buffered JSON) shares those strings.
 *
 * Bound and overflow policy: the log holds at most `maxBytes` of serialised events. Past that
 * the oldest events are dropped (the last one always stays); a reader asking for dropped events
 * gets one `gap` event naming the range, then continues with what is held.
 * Readers follow at their own pace: a slow reader never slows the writer, it falls behind.
 */
import type { EventType, ExecutionEvent, GapEvent } from '@sluice/protocol';

/** One stored event. */
export interface LogEntry {
  readonly seq: number;
  readonly type: EventType;
  /** The event as JSON, exactly what goes on the wire. */
  readonly json: string;
}

/** An event as the producer describes it; the log adds `seq` and `ts`. */
export type NewEvent = ExecutionEvent extends infer E ? (E extends ExecutionEvent ? Omit<E, 'seq' | 'ts'> : never) : never;

/** Most events handed to a reader at once. */
const BATCH = 512;

export class EventLog {
  private entries: LogEntry[] = [];
  /** Index in `entries` of the oldest held event (dropped events are trimmed lazily). */
  private head = 0;
  private nextSeq = 1;
  private heldBytes = 0;
  private isClosed = false;
  private tick: { promise: Promise<void>; resolve: () => void } | null = null;

  constructor(private readonly maxBytes: number = 64 * 1024 * 1024) {}

  /** Appends an event, assigning its `seq` and `ts`; returns the stored entry. */
  append(event: NewEvent): LogEntry {
    if (this.isClosed) throw new Error('event log is closed');
    const seq = this.nextSeq++;
    // seq and ts first so they lead the JSON, as in the contract's examples.
    const { type, ...rest } = event;
    const full = { type, seq, ts: Date.now(), ...rest } as ExecutionEvent;
    const entry: LogEntry = { seq, type: full.type, json: JSON.stringify(full) };
    this.entries.push(entry);
    this.heldBytes += entry.json.length;
    this.evict();
    this.notify();
    return entry;
  }

  /** Marks the log complete: followers return once they have read everything. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.notify();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** seq of the newest event, 0 when empty. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** seq of the oldest event still held. */
  get firstSeq(): number {
    return this.entries[this.head]?.seq ?? this.nextSeq;
  }

  /** Serialised bytes held. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** The entries held right now (a shallow copy: later appends and evictions do not affect it). */
  snapshot(): LogEntry[] {
    return this.entries.slice(this.head);
  }

  /** The held events with `seq >= from`, parsed (for folding into a buffered answer). */
  *events(from = 1): Generator<ExecutionEvent> {
    for (let i = Math.max(this.head, this.head + (from - this.firstSeq)); i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e) yield JSON.parse(e.json) as ExecutionEvent;
    }
  }

  /**
   * Reads from `from` (inclusive) to the end, waiting for new events until the log closes or
   * `signal` aborts. Yields batches; a `gap` entry stands for events no longer held.
   */
  async *follow(from: number, signal?: AbortSignal): AsyncGenerator<LogEntry[]> {
    let next = Math.max(1, Math.floor(from));
    while (!signal?.aborted) {
      const first = this.firstSeq;
      if (next < first) {
        yield [gapEntry(next, first - 1)];
        next = first;
        continue;
      }
      if (next < this.nextSeq) {
        const start = this.head + (next - first);
        const batch = this.entries.slice(start, start + BATCH);
        next += batch.length;
        yield batch;
        continue;
      }
      if (this.isClosed) return;
      await this.changed(signal);
    }
  }

  private changed(signal?: AbortSignal): Promise<void> {
    if (!this.tick) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.tick = { promise, resolve };
    }
    const tick = this.tick.promise;
    if (!signal) return tick;
    return new Promise<void>((resolve) => {
      const onAbort = (): void => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      void tick.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private notify(): void {
    const t = this.tick;
    this.tick = null;
    t?.resolve();
  }

  private evict(): void {
    while (this.heldBytes > this.maxBytes && this.entries.length - this.head > 1) {
      const old = this.entries[this.head];
      if (!old) break;
      this.heldBytes -= old.json.length;
      this.head++;
    }
    // Compact once the dropped prefix dominates, keeping eviction O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

function gapEntry(fromSeq: number, toSeq: number): LogEntry {
  const ev: GapEvent = { type: 'gap', seq: toSeq, ts: Date.now(), from_seq: fromSeq, to_seq: toSeq };
  return { seq: toSeq, type: 'gap', json: JSON.stringify(ev) };
}
