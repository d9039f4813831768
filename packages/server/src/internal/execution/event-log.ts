/**
 * The ordered, bounded log of one execution. Events get `seq` 1..n and are serialised to JSON
 * once, when appended; the log stores only that string (and its seq), and every reader (SSE,
 * NDJSON, WebSocket, buffered JSON) shares it.
 *
 * Bound: the log holds at most `maxBytes` of memory, counted per event as the string's real size
 * (1 byte per character, 2 when it holds a character past U+00FF; see memoryOf); a
 * LogBudget may also make it shed events to keep all logs of the server within one budget.
 *
 * Overflow policy, in this order, so that a flood on the events channel cannot push out the
 * program's output (which the output limit already bounds to fit):
 *   1. the oldest `progress` events, except the newest one (progress is a state: the latest wins);
 *   2. the oldest `result` events;
 *   3. the oldest events of any type.
 * The newest event always stays. A reader asking for dropped events gets one `gap` event per run
 * of missing seqs, then continues with what is held; `evicted` says exactly what was dropped.
 * Readers follow at their own pace: a slow reader never slows the writer, it falls behind.
 *
 * Spill: once closed, a log may move its events to a file (log-disk.ts decides when and where;
 * spill-file.ts is the format). The strings stay in memory until the file is complete, then
 * only a sparse index and the newest event remain; every reader reads the file from then on, in
 * bounded chunks, and sees the same events, gaps and `evicted` as before.
 *
 * While it runs, a log with a disk writes its older events to that same file once it holds more
 * than TAIL_HIGH of output (events other than progress and results: a flood of those is shed as
 * superseded, not written out), keeping its newest TAIL_LOW in memory: a long stream's log takes
 * a bounded window of memory, not the whole output. The events being written stay in memory (and
 * readable there) until their write is over, and the overflow policy leaves them alone; once
 * written they are read from the file. Events in the file are never dropped while the log runs:
 * the file is bounded by `maxBytes` and by the disk's budget, and when either is reached (or a
 * write fails) the log keeps its newer events in memory, where the policy above applies to them.
 * A log that overflows then keeps its head (in the file) and its newest events, and loses a run
 * between, as the output limit does.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { EventType, EvictedEvents, ExecutionEvent } from '@sluice/protocol';
import { EvictedTally } from './evicted-tally.js';
import { gapEntry, typeOf, type LogEntry, type LoggedEvent, type ReadableLog } from './readable-log.js';
import { quoteJSON } from './json-quote.js';
import { indexBytes, offsetOf, readSpill, readSpillSync, spillSize, SpillWriter, writeSpill, type SpillFile, type SpillScratch } from './spill-file.js';

export type { LogEntry, LoggedEvent } from './readable-log.js';

/** An event as the producer describes it; the log adds `seq` and `ts`. */
export type NewEvent<E extends LoggedEvent = ExecutionEvent> = E extends LoggedEvent ? Omit<E, 'seq' | 'ts'> : never;

/** What a LogBudget needs of a log. */
export interface BudgetedLog {
  readonly bytes: number;
  /** True while its events are in a file (it holds only an index in memory). */
  readonly onDisk: boolean;
  /** Drops events (channel events only, or any) until `bytes` are freed; returns what was freed. */
  shed(bytes: number, scope: ShedScope): number;
  /** Drops everything but the newest event: the execution is being forgotten. */
  release(): void;
}

/** What a LogDisk needs of a log. */
export interface SpillableLog extends BudgetedLog {
  readonly closed: boolean;
  /** The file a running log writes its older events to (null: none); its spill finishes that file. */
  readonly tailFile: string | null;
  /** Memory the log let go into its file while it ran, bytes. */
  readonly movedOut: number;
  /** True once release() ran: the log is forgotten and never goes to disk again. */
  readonly released: boolean;
  /** Bytes the file of its held events would take. */
  spillSize(): Promise<number>;
  /**
   * Writes its held events to `file` (which must not exist) and then holds only an index of
   * it, telling `sink` (synchronously, when the file becomes the log's). False when the log
   * changed meanwhile (released): the file is removed and nothing changes. Throws when the
   * write fails; the log keeps its events in memory and the caller removes the file.
   */
  spillTo(file: string, sink: SpillSink): Promise<boolean>;
}

/** Where a spilled log's file is accounted. */
export interface SpillSink {
  /** The log's finished file (a running log's file, finished, replaces what was counted of it). */
  stored(log: SpillableLog, file: string, bytes: number): void;
  /** The log no longer needs its file (released): remove it. */
  discard(log: SpillableLog): void;
}

/** Where a running log writes its older events (a LogDisk). */
export interface TailSink extends SpillSink {
  /** False while the disk is not ready (or closing, or failed to start): running logs wait. */
  readonly available: boolean;
  /** A path for a running log's file (it does not exist yet), or null: no disk now. */
  tailPath(log: SpillableLog): string | null;
  /**
   * Counts `bytes` more of the log's file (`file`) on the disk, forgetting the oldest finished
   * logs to make room; false when they do not fit (nothing is counted then).
   */
  grow(log: SpillableLog, file: string, bytes: number): boolean;
  /** Writing the log's file failed: it keeps its newer events in memory from now on. */
  failed(log: SpillableLog, err: unknown): void;
}

/** Which events `shed` may drop: `channel` = superseded progress and results; `any` = also output. */
export type ShedScope = 'channel' | 'any';

/** Where a log reports the memory it holds. */
export interface LogBudgetSink {
  /** The log now holds `delta` more bytes (negative: fewer). */
  add(log: BudgetedLog, delta: number): void;
  closed(log: BudgetedLog): void;
  released(log: BudgetedLog): void;
}

/**
 * Memory per stored event beyond its characters, bytes: the V8 string header (16) and its
 * alignment (up to 7), the two array slots holding it and its seq (16) with the arrays' growth
 * slack (×1.5) and the dropped slots kept until compaction (up to ×2). Measured by
 * event-log.test.ts ("the counted bytes cover the memory the log really holds").
 */
export const ENTRY_OVERHEAD = 72;

/** Most events handed to a reader at once. */
const BATCH = 512;
/**
 * A running log with a disk writes its older events out once it holds more than TAIL_HIGH bytes
 * of output, keeping the newest TAIL_LOW in memory. Small enough that a stream's events leave memory before
 * V8 promotes them out of its young generation (with a window of ~17 MiB they were still
 * promoted, and cost nearly as much as holding everything).
 */
const TAIL_HIGH = 2 * 1024 * 1024;
const TAIL_LOW = 512 * 1024;
/**
 * Characters of events written to the running file at once, at most: while they are written the
 * overflow policy cannot drop them, so a write takes little of the log's bound.
 */
const TAIL_CHUNK_CHARS = 2 * 1024 * 1024;
/** Bytes read from a spilled log's file at once (more only for one event longer than this). */
const READ_BYTES = 1024 * 1024;
const MIN_READ_BYTES = 16 * 1024;
/** Memory of a spilled log beyond its index and newest event: the objects that describe the file. */
const SPILL_OVERHEAD = 512;
/** A dropped slot: the string is released, the slot waits for compaction. */
const HOLE = '';
/** JSON.stringify leaves these characters as they are, so one of them makes a two-byte string. */
const WIDE = /[^\u0000-\u00ff]/;

/**
 * Which event types the overflow policy drops first: a log's progress (superseded by the
 * next) and its results. An execution's are `progress` and `result`; an agent run's are the
 * relayed `tool_progress` and `tool_result`, so a flood on a tool's channel cannot push out the
 * model's words or the code's output either.
 */
export interface ChannelTypes {
  progress: string;
  result: string;
}

/** A spilled log's file and who accounts for it. */
interface Spilled {
  readonly file: SpillFile;
  readonly sink: SpillSink;
}

/**
 * The log; `E` is the union of its events (an execution's by default). Every union carries a
 * `gap` variant with `from_seq` and `to_seq`: readers of a shed log get those.
 */
export class EventLog<E extends LoggedEvent = ExecutionEvent> implements SpillableLog, ReadableLog<E> {
  /** JSON of each event, HOLE where one was dropped; parallel to `seqs`. */
  private jsons: string[] = [];
  private seqs: number[] = [];
  /** Index of the oldest held event. */
  private head = 0;
  /** Dropped slots at or after `head`. */
  private holes = 0;
  /** Every held `progress` / `result` is at or after these indexes (oldest-first scans). */
  private progressCursor = 0;
  private resultCursor = 0;
  private progressHeld = 0;
  private resultHeld = 0;
  /** Memory of the held progress and result events (the rest is the program's output and the like). */
  private channelBytes = 0;
  private nextSeq = 1;
  private heldBytes = 0;
  private isClosed = false;
  private budget: LogBudgetSink | null = null;
  private readonly lost = new EvictedTally();
  private tick: { promise: Promise<void>; resolve: () => void } | null = null;
  /** The file holding the events once spilled (the arrays are empty then), and who accounts it. */
  private spilled: Spilled | null = null;
  /** Changes whenever held events are dropped: a spill in progress started from an older state. */
  private generation = 0;
  private isReleased = false;
  /** Where a running log writes its older events, once it has begun to (tail-spill). */
  private disk: TailSink | null = null;
  private writer: SpillWriter | null = null;
  /** The write to `writer` in progress; events with seq <= `pinned` are in it. */
  private writing: Promise<void> | null = null;
  private pinned = 0;
  /** Memory the running file's index takes (counted in heldBytes). */
  private writerIndexBytes = 0;
  /** Memory let go into the running file so far (see movedOut). */
  private moved = 0;
  /** The running file is full or failed: newer events stay in memory. */
  private tailOff = false;

  private readonly progressType: string;
  private readonly resultType: string;
  private readonly progressPrefix: string;
  private readonly resultPrefix: string;

  constructor(
    private readonly maxBytes: number = 64 * 1024 * 1024,
    channel: ChannelTypes = { progress: 'progress', result: 'result' },
  ) {
    this.progressType = channel.progress;
    this.resultType = channel.result;
    this.progressPrefix = `{"type":"${channel.progress}"`;
    this.resultPrefix = `{"type":"${channel.result}"`;
  }

  /** Counts this log's memory in a server-wide budget, which may make it shed events. */
  useBudget(budget: LogBudgetSink): void {
    this.budget = budget;
    if (this.heldBytes > 0) budget.add(this, this.heldBytes);
  }

  /** Lets the log write its older events to a file while it runs (see the header). */
  useDisk(disk: TailSink): void {
    this.disk = disk;
  }

  /** Appends an event, assigning its `seq` and `ts`; returns it as readers will get it. */
  append(event: NewEvent<E>): LogEntry<E['type']> {
    if (this.isClosed) throw new Error('event log is closed');
    const seq = this.nextSeq++;
    const json = serialise(event, seq);
    this.jsons.push(json);
    this.seqs.push(seq);
    const size = memoryOf(json);
    if (event.type === this.progressType) this.progressHeld++;
    else if (event.type === this.resultType) this.resultHeld++;
    if (event.type === this.progressType || event.type === this.resultType) this.channelBytes += size;
    this.heldBytes += size;
    if (this.heldBytes > this.maxBytes) this.shed(this.heldBytes - this.maxBytes, 'any');
    // After the log's own bound: the budget sees only what this log still holds.
    this.budget?.add(this, size);
    this.notify();
    if (this.outputHeld() > TAIL_HIGH && this.disk !== null && this.writing === null && !this.tailOff) this.writeTail(this.disk);
    return { seq, type: event.type as E['type'], json };
  }

  /** Marks the log complete: followers return once they have read everything. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.budget?.closed(this);
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
    if (this.spilled) return this.spilled.file.firstSeq;
    const w = this.writer;
    if (w !== null && w.newestSeq > 0) return w.summary().firstSeq;
    return this.seqs[this.head] ?? this.nextSeq;
  }

  get tailFile(): string | null {
    return this.writer?.file ?? null;
  }

  get movedOut(): number {
    return this.moved;
  }

  get onDisk(): boolean {
    return this.spilled !== null;
  }

  /** Memory held, bytes (what the bound and the budget count). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Events dropped so far (a copy). */
  get evicted(): EvictedEvents {
    return this.lost.copy();
  }

  /**
   * The JSON of the events held right now, oldest first (later appends and drops do not affect
   * it). Reads a spilled log's file synchronously: for tests and tools, not for serving.
   */
  snapshot(): string[] {
    const out: string[] = [];
    if (this.spilled) {
      for (const line of readSpillSync(this.spilled.file.file, 0, READ_BYTES)) out.push(line.json);
      return out;
    }
    const w = this.writer;
    if (w !== null) for (const line of readSpillSync(w.file, 0, READ_BYTES, w.bytes)) out.push(line.json);
    // Written events leave memory right after their write: skip any not gone yet.
    for (let i = this.indexOf((w?.newestSeq ?? 0) + 1); i < this.jsons.length; i++) {
      const json = this.jsons[i];
      if (json) out.push(json);
    }
    return out;
  }

  /** The held events with `seq >= from`, parsed (a spilled log's synchronously, like snapshot). */
  *events(from = 1): Generator<E> {
    if (this.spilled) {
      for (const line of readSpillSync(this.spilled.file.file, from, READ_BYTES)) yield JSON.parse(line.json) as E;
      return;
    }
    const w = this.writer;
    if (w !== null) for (const line of readSpillSync(w.file, from, READ_BYTES, w.bytes)) yield JSON.parse(line.json) as E;
    for (let i = this.indexOf(Math.max(from, (w?.newestSeq ?? 0) + 1)); i < this.jsons.length; i++) {
      const json = this.jsons[i];
      if (json) yield JSON.parse(json) as E;
    }
  }

  /**
   * Reads from `from` (inclusive) to the end, waiting for new events until the log closes or
   * `signal` aborts. Yields batches; a `gap` entry stands for each run of events no longer held.
   */
  follow(from: number, signal?: AbortSignal): AsyncGenerator<LogEntry<E['type']>[]> {
    return this.read(from, signal, true);
  }

  /** follow(), or when not `wait`ing, what is there now: it returns once it has read to the newest event. */
  private async *read(from: number, signal: AbortSignal | undefined, wait: boolean): AsyncGenerator<LogEntry<E['type']>[]> {
    let next = Math.max(1, Math.floor(from));
    /** Where the previous batch from a file ended: the next one continues there. */
    let cursor: { file: object; next: number; offset: number } | null = null;
    /** Bytes to read next: about what the last BATCH events took, so small events are not read 1 MiB at a time. */
    let readBytes = READ_BYTES;
    const scratch: SpillScratch = { buf: null };
    while (!signal?.aborted) {
      // A spilled log's file holds all it has; a running log's file its oldest events, up to `end`.
      const spilled = this.spilled;
      const w = this.writer;
      let file: { key: object; path: string; end: number; offsetOf: (seq: number) => number } | null = null;
      if (next < this.nextSeq && spilled) file = { key: spilled, path: spilled.file.file, end: Infinity, offsetOf: (seq) => offsetOf(spilled.file.index, seq) };
      else if (w !== null && next <= w.newestSeq) file = { key: w, path: w.file, end: w.bytes, offsetOf: (seq) => w.offsetOf(seq) };
      if (file !== null) {
        const offset = cursor?.file === file.key && cursor.next === next ? cursor.offset : file.offsetOf(next);
        let chunk;
        try {
          chunk = await readSpill(file.path, offset, Math.min(readBytes, file.end - offset), BATCH, next, scratch);
        } catch (err) {
          // Released while we read: its file is gone, and the log says what is left.
          if (this.spilled !== spilled || this.writer !== w) continue;
          throw err;
        }
        const batch: LogEntry<E['type']>[] = [];
        for (const { seq, json } of chunk.lines) {
          if (seq > next) batch.push(gapEntry(next, seq - 1));
          batch.push({ seq, type: typeOf(json) as E['type'], json });
          next = seq + 1;
        }
        cursor = { file: file.key, next, offset: chunk.end };
        readBytes = chunk.lines.length === BATCH ? Math.min(READ_BYTES, Math.max(MIN_READ_BYTES, Math.ceil((chunk.end - offset) * 1.25))) : READ_BYTES;
        if (batch.length > 0) yield batch;
        else if (chunk.end === offset) {
          // The file ended before the log (or its written part) did: it cannot hold what is missing.
          const to = file.end === Infinity ? this.nextSeq - 1 : (w?.newestSeq ?? next);
          yield [gapEntry(next, to)];
          next = to + 1;
        }
        continue;
      }
      if (next < this.nextSeq) {
        const batch: LogEntry<E['type']>[] = [];
        // Found again each time: the arrays may have been compacted while the reader waited.
        for (let i = this.indexOf(next); i < this.jsons.length && batch.length < BATCH; i++) {
          const json = this.jsons[i];
          const seq = this.seqs[i];
          if (!json || seq === undefined) continue;
          if (seq > next) batch.push(gapEntry(next, seq - 1));
          batch.push({ seq, type: typeOf(json) as E['type'], json });
          next = seq + 1;
        }
        // Only possible if nothing from `next` on is held (the newest event always is).
        if (batch.length === 0) {
          batch.push(gapEntry(next, this.nextSeq - 1));
          next = this.nextSeq;
        }
        yield batch;
        continue;
      }
      if (this.isClosed || !wait) return;
      await this.changed(signal);
    }
  }

  /**
   * Every held event's JSON, oldest first, in batches (bounded when read from a spilled log's
   * file); `onEvicted` gets what was dropped, taken at the same moment as the events, before
   * the first batch.
   */
  async *scan(onEvicted: (evicted: EvictedEvents) => void): AsyncGenerator<string[]> {
    for (;;) {
      const spilled = this.spilled;
      if (!spilled && this.writer !== null) {
        // A running log with a file: read like a follower that stops at the newest event.
        onEvicted(this.evicted);
        for await (const batch of this.read(1, undefined, false)) {
          const jsons: string[] = [];
          for (const e of batch) if (e.type !== 'gap') jsons.push(e.json);
          yield jsons;
        }
        return;
      }
      if (!spilled) {
        onEvicted(this.evicted);
        yield this.snapshot();
        return;
      }
      let fh: FileHandle;
      try {
        fh = await open(spilled.file.file, 'r');
      } catch (err) {
        if (this.spilled !== spilled) continue;
        throw err;
      }
      try {
        // Released while opening: what it dropped has changed; take both again.
        if (this.spilled !== spilled) continue;
        onEvicted(this.evicted);
        // The open handle reads the file even if the log is released (and the file removed) meanwhile.
        const scratch: SpillScratch = { buf: null };
        for (let offset = 0; ; ) {
          const chunk = await readSpill(fh, offset, READ_BYTES, Infinity, 0, scratch);
          if (chunk.end === offset) return;
          offset = chunk.end;
          yield chunk.lines.map((l) => l.json);
        }
      } finally {
        await fh.close();
      }
    }
  }

  async spillSize(): Promise<number> {
    return this.spilled ? 0 : spillSize(this.jsons, this.head);
  }

  get released(): boolean {
    return this.isReleased;
  }

  async spillTo(file: string, sink: SpillSink): Promise<boolean> {
    // A write of the running file still going on (the log closed meanwhile) ends first.
    await this.writesSettled();
    if (!this.isClosed || this.spilled || this.isReleased) return false;
    if (this.writer !== null) return this.finishFile(this.writer, sink);
    const generation = this.generation;
    const written = await writeSpill(file, this.jsons, this.seqs, this.head, typeOf);
    if (this.generation !== generation || this.spilled) {
      await rm(file, { force: true });
      return false;
    }
    this.becomeSpilled(written, sink);
    return true;
  }

  /** A running log's file gets the events still in memory and becomes the log's spill. */
  private async finishFile(w: SpillWriter, sink: SpillSink): Promise<boolean> {
    // Tracked like a running write, so that a release meanwhile leaves the file to it.
    const done = w.append(this.jsons, this.seqs, this.head, this.jsons.length).then(() => w.finish());
    this.writing = done.then(
      () => undefined,
      () => undefined,
    );
    let written: SpillFile;
    try {
      written = await done;
    } finally {
      this.writing = null;
    }
    if (this.isReleased) {
      await w.close();
      return false;
    }
    await w.close();
    this.writer = null;
    this.writerIndexBytes = 0;
    this.becomeSpilled(written, sink);
    return true;
  }

  /** The log's events are all in `written`: memory keeps its index and newest event. */
  private becomeSpilled(written: SpillFile, sink: SpillSink): void {
    const before = this.heldBytes;
    this.spilled = { file: written, sink };
    this.jsons = [];
    this.seqs = [];
    this.head = this.holes = this.progressCursor = this.resultCursor = 0;
    this.progressHeld = this.resultHeld = this.channelBytes = 0;
    this.heldBytes = indexBytes(written.index) + memoryOf(written.last) + SPILL_OVERHEAD;
    sink.stored(this, written.file, written.bytes);
    this.budget?.add(this, this.heldBytes - before);
  }

  shed(bytes: number, scope: ShedScope): number {
    // A spilled log is finished: only release() drops its events.
    if (this.spilled) return 0;
    let freed = 0;
    while (freed < bytes) {
      const i = this.oldestChannelEvent() ?? (scope === 'any' ? this.oldestEvent() : null);
      if (i === null) break;
      freed += this.drop(i);
    }
    this.compact();
    return freed;
  }

  release(): void {
    const before = this.heldBytes;
    this.generation++;
    this.isReleased = true;
    let keep: string | undefined;
    let keepSeq: number | undefined;
    if (this.spilled) {
      const { file, sink } = this.spilled;
      this.spilled = null;
      this.countSpilled(file);
      keep = file.last;
      keepSeq = file.lastSeq;
      sink.discard(this);
    } else {
      const w = this.writer;
      const written = w?.newestSeq ?? 0;
      if (w !== null) {
        // Its file goes: every event in it counts as dropped (the newest event is in memory).
        this.writer = null;
        this.writerIndexBytes = 0;
        const { count, firstSeq, lastSeq, types } = w.summary();
        if (count > 0) this.lost.dropRange(firstSeq, lastSeq, count, types as EvictedEvents['types']);
        this.disk?.discard(this);
        // A write in progress closes it when it ends.
        if (this.writing === null) w.close().catch(() => {});
      }
      const last = this.jsons.length - 1;
      for (let i = this.head; i < last; i++) {
        const json = this.jsons[i];
        // Not yet let go after their write: counted with the file.
        if (!json || (this.seqs[i] ?? 0) <= written) continue;
        // The execution is being forgotten: count what goes, but do not parse output for its bytes.
        this.count(json, this.seqs[i] ?? 0, 0);
      }
      keep = this.jsons[last];
      keepSeq = this.seqs[last];
    }
    this.jsons = keep ? [keep] : [];
    this.seqs = keepSeq !== undefined && keep ? [keepSeq] : [];
    this.heldBytes = keep ? memoryOf(keep) : 0;
    this.head = this.holes = this.progressCursor = this.resultCursor = 0;
    this.progressHeld = keep?.startsWith(this.progressPrefix) ? 1 : 0;
    this.resultHeld = keep?.startsWith(this.resultPrefix) ? 1 : 0;
    this.channelBytes = keep && this.progressHeld + this.resultHeld > 0 ? memoryOf(keep) : 0;
    // The budget stops counting this log altogether: nothing reachable holds it but readers.
    if (this.budget) {
      this.budget.add(this, -before);
      this.budget.released(this);
      this.budget = null;
    }
  }

  /** Index of the oldest droppable progress or result event, by the overflow policy. */
  private oldestChannelEvent(): number | null {
    const last = this.jsons.length - 1;
    // The newest progress stays: it is the current state.
    // Events being written to the running file (seq <= pinned) are passed over.
    if (this.progressHeld > 1) {
      while (this.progressCursor < last && (!this.jsons[this.progressCursor]?.startsWith(this.progressPrefix) || this.isPinned(this.progressCursor))) this.progressCursor++;
      if (this.progressCursor < last) return this.progressCursor;
    }
    if (this.resultHeld > 0) {
      while (this.resultCursor < last && (!this.jsons[this.resultCursor]?.startsWith(this.resultPrefix) || this.isPinned(this.resultCursor))) this.resultCursor++;
      if (this.resultCursor < last) return this.resultCursor;
    }
    return null;
  }

  private isPinned(i: number): boolean {
    return (this.seqs[i] ?? 0) <= this.pinned;
  }

  /** Index of the oldest held event unless it is the newest (or being written to the running file). */
  private oldestEvent(): number | null {
    while (this.head < this.jsons.length && !this.jsons[this.head]) {
      this.head++;
      this.holes--;
    }
    let i = this.head;
    if (this.pinned > 0) for (i = this.indexOf(this.pinned + 1); i < this.jsons.length && !this.jsons[i]; ) i++;
    return i < this.jsons.length - 1 ? i : null;
  }

  /**
   * Writes the oldest events to the running file (see the header), all but the newest TAIL_LOW
   * bytes (at most TAIL_CHUNK_CHARS at once); they leave memory once written.
   */
  private writeTail(disk: TailSink): void {
    if (this.writer === null && !disk.available) return;
    const last = this.jsons.length - 1;
    let keep = this.heldBytes;
    let chars = 0;
    let to = this.head;
    for (; to < last && keep > TAIL_LOW && chars < TAIL_CHUNK_CHARS; to++) {
      const json = this.jsons[to];
      if (!json) continue;
      keep -= memoryOf(json);
      chars += json.length;
    }
    const through = this.seqs[to - 1];
    if (to === this.head || through === undefined) return;
    this.pinned = through;
    // The arrays as they are now: a compaction meanwhile makes new ones, and leaves these be.
    this.writing = this.appendTail(disk, this.jsons, this.seqs, this.head, to, through).finally(() => {
      this.writing = null;
      this.pinned = 0;
      // What arrived meanwhile goes next, without waiting for another append.
      if (!this.isClosed && this.outputHeld() > TAIL_HIGH && !this.tailOff) this.writeTail(disk);
    });
  }

  /** Resolves once no write of the running file is in progress (tests, tools). */
  async writesSettled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async appendTail(disk: TailSink, jsons: readonly string[], seqs: readonly number[], from: number, to: number, through: number): Promise<void> {
    let w = this.writer;
    try {
      if (w === null) {
        const path = disk.tailPath(this);
        if (path === null) return;
        w = await SpillWriter.create(path, typeOf);
        if (this.isReleased) {
          await w.close();
          await rm(path, { force: true });
          return;
        }
        this.writer = w;
      }
      let bytes = 0;
      for (let i = from; i < to; i++) {
        const json = jsons[i];
        if (json) bytes += Buffer.byteLength(json) + 1;
      }
      if (w.bytes + bytes > this.maxBytes || !disk.grow(this, w.file, bytes)) {
        this.tailOff = true;
        if (w.bytes === 0) {
          // Nothing of it was counted: the empty file goes.
          this.writer = null;
          await w.close();
          await rm(w.file, { force: true });
        }
        return;
      }
      await w.append(jsons, seqs, from, to, bytes);
      if (this.isReleased) return;
      this.moveToFile(through, w);
    } catch (err) {
      this.tailOff = true;
      if (!this.isReleased) disk.failed(this, err);
    } finally {
      if (this.isReleased) await w?.close().catch(() => {});
    }
  }

  /** The events through `through` are in the running file: memory lets them go (they are not dropped). */
  private moveToFile(through: number, w: SpillWriter): void {
    let freed = 0;
    for (let i = this.head; i < this.jsons.length; i++) {
      const seq = this.seqs[i] ?? 0;
      if (seq > through) break;
      const json = this.jsons[i];
      if (!json) continue;
      this.forget(json);
      this.jsons[i] = HOLE;
      this.holes++;
      freed += memoryOf(json);
    }
    this.moved += freed;
    const index = w.indexBytes - this.writerIndexBytes;
    this.writerIndexBytes = w.indexBytes;
    this.heldBytes += index - freed;
    this.budget?.add(this, index - freed);
    this.compact();
  }

  /** Held memory other than progress and results: what makes a running log write its file. */
  private outputHeld(): number {
    return this.heldBytes - this.channelBytes;
  }

  /** Counts out of the held tallies an event that leaves memory (dropped or written out). */
  private forget(json: string): void {
    const type = typeOf(json);
    if (type !== this.progressType && type !== this.resultType) return;
    if (type === this.progressType) this.progressHeld--;
    else this.resultHeld--;
    this.channelBytes -= memoryOf(json);
  }

  private drop(i: number): number {
    const json = this.jsons[i];
    if (!json) return 0;
    const seq = this.seqs[i] ?? 0;
    const type = typeOf(json);
    let outputBytes = 0;
    if (type === 'stdout' || type === 'stderr') outputBytes = Buffer.byteLength((JSON.parse(json) as { content: string }).content);
    this.count(json, seq, outputBytes);
    this.forget(json);
    this.jsons[i] = HOLE;
    this.holes++;
    this.generation++;
    const size = memoryOf(json);
    this.heldBytes -= size;
    this.budget?.add(this, -size);
    return size;
  }

  /** Counts as dropped every event of a spilled log's file but the newest (what release keeps). */
  private countSpilled(file: SpillFile): void {
    if (file.prevSeq === null) return;
    const newest = typeOf(file.last);
    const types: EvictedEvents['types'] = {};
    for (const [name, n] of Object.entries(file.types)) {
      // As typeOf: the log's own union (an agent run's types are counted the same way).
      const type = name as EventType;
      const dropped = type === newest ? n - 1 : n;
      if (dropped > 0) types[type] = dropped;
    }
    this.lost.dropRange(file.firstSeq, file.prevSeq, file.count - 1, types);
  }

  private count(json: string, seq: number, outputBytes: number): void {
    this.lost.drop(seq, typeOf(json), outputBytes);
  }

  /** Removes dropped slots once they are half the arrays, keeping drops O(1) amortised. */
  private compact(): void {
    while (this.head < this.jsons.length - 1 && !this.jsons[this.head]) {
      this.head++;
      this.holes--;
    }
    const dead = this.head + this.holes;
    if (dead <= 1024 || dead * 2 <= this.jsons.length) return;
    const jsons: string[] = [];
    const seqs: number[] = [];
    const oldProgress = Math.max(this.progressCursor, this.head);
    const oldResult = Math.max(this.resultCursor, this.head);
    let progressCursor = 0;
    let resultCursor = 0;
    for (let i = this.head; i < this.jsons.length; i++) {
      if (i === oldProgress) progressCursor = jsons.length;
      if (i === oldResult) resultCursor = jsons.length;
      const json = this.jsons[i];
      const seq = this.seqs[i];
      if (!json || seq === undefined) continue;
      jsons.push(json);
      seqs.push(seq);
    }
    this.progressCursor = progressCursor;
    this.resultCursor = resultCursor;
    this.jsons = jsons;
    this.seqs = seqs;
    this.head = 0;
    this.holes = 0;
  }

  /** Index of the first slot with seq >= `seq` (binary search: seqs are increasing). */
  private indexOf(seq: number): number {
    let lo = this.head;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.seqs[mid] ?? Infinity) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
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
}

/**
 * The event's JSON with `type`, `seq` and `ts` first (as in the contract's examples), built as
 * one flat string: a string made by JSON.stringify of the whole event keeps up to twice its
 * length allocated, and a concatenation left unflattened is a tree of small strings.
 */
export function serialise(event: { type: string }, seq: number): string {
  const { type, ...rest } = event;
  const json = `{"type":"${type}","seq":${seq},"ts":${Date.now()}${fieldsOf(rest)}}`;
  // Reading a character flattens it (V8 copies a concatenation into one string when indexed).
  json.charCodeAt(0);
  return json;
}

/**
 * The fields after `ts`, each with its leading comma (`""` for none), as JSON.stringify(rest) would
 * write them. An output event (its one field a long `content`) skips the object walk and quotes
 * its text with quoteJSON, the hot path of a stream.
 */
function fieldsOf(rest: Record<string, unknown>): string {
  const content = rest['content'];
  if (typeof content === 'string') {
    let only = true;
    for (const key in rest) if (key !== 'content') only = false;
    if (only) return `,"content":${quoteJSON(content)}`;
  }
  const fields = JSON.stringify(rest);
  return fields === '{}' ? '' : `,${fields.slice(1, -1)}`;
}

/**
 * Memory a stored event takes, bytes: its characters, 1/256 more for the page headers and
 * rounding of strings too big for V8's regular pages (measured at 0.1-0.3% past 128 KiB), and
 * ENTRY_OVERHEAD.
 */
export function memoryOf(json: string): number {
  const chars = WIDE.test(json) ? 2 * json.length : json.length;
  return chars + (chars >>> 8) + ENTRY_OVERHEAD;
}
