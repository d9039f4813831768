/**
 * Where finished event logs go so that the server's memory stays flat however much the
 * programs printed: `<SLUICE_DATA_DIR>/logs`, one file per log (spill-file.ts), within
 * SLUICE_LOG_DISK_BYTES. Logs are written one at a time, in the order they finished, with the
 * event loop running between writes; each log keeps its events in memory until its file is
 * complete.
 *
 * A running log may begin its file before it ends (event-log.ts, "tail-spill"): it asks for a
 * path, and for room as its file grows (counted at once, within the same budget); when it ends,
 * its spill finishes that file.
 *
 * Policy:
 *   - logs under MIN_SPILL_BYTES stay in memory (a file costs more than they do);
 *   - when a log would take the disk past its budget, the oldest spilled logs are forgotten (as
 *     retention forgets them: their ids answer NOT_FOUND) until it fits (a running log's file
 *     is never forgotten for room); a log larger than the whole budget stays in memory, counted
 *     in SLUICE_LOG_BUDGET like a running one;
 *   - a failed write leaves the log in memory, loses nothing, and logs a warning;
 *   - a released log's file is removed at once; the directory is emptied when the server starts
 *     (a previous server's files belong to executions that died with it) and when it closes.
 */
import { mkdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { collectGarbage } from './collect-garbage.js';
import type { SpillableLog, TailSink } from './event-log.js';

/** Logs holding less than this (bytes of memory) are not written out. */
export const MIN_SPILL_BYTES = 64 * 1024;
/** Memory freed by spills since the last collection that makes another worth its pause. */
const COLLECT_AFTER_BYTES = 32 * 1024 * 1024;

export interface LogDiskOptions {
  /** The directory, emptied at start (created if missing). */
  dir: string;
  /** Bytes of files at most; 0 turns spilling off. */
  maxBytes: number;
  log: { warn(obj: object, msg: string): void };
  /** Logs smaller than this stay in memory (MIN_SPILL_BYTES unless a test says otherwise). */
  minBytes?: number;
  /** Returns freed memory to the system (collectGarbage unless a test says otherwise). */
  collect?: () => void;
}

export class LogDisk implements TailSink {
  private used = 0;
  /** Logs with a file (spilled, running ones', or being written), oldest first, and its bytes. */
  private readonly files = new Map<SpillableLog, { file: string; bytes: number }>();
  private queue: Promise<void> = Promise.resolve();
  /** False when the directory could not be prepared: nothing is spilled. */
  private readonly ready: Promise<boolean>;
  /** `ready`'s value once settled (running logs ask synchronously). */
  private isReady = false;
  private nextName = 1;
  /** Memory freed by spills since the last collection. */
  private freed = 0;
  private closing = false;
  private readonly minBytes: number;

  constructor(private readonly opts: LogDiskOptions) {
    this.minBytes = opts.minBytes ?? MIN_SPILL_BYTES;
    // Off or on, a previous server's files go: they belong to executions that died with it.
    this.ready = opts.maxBytes > 0 ? this.prepare() : this.removeLeftovers();
    void this.ready.then((ok) => (this.isReady = ok));
  }

  /** Bytes of spilled logs' files now. */
  get bytes(): number {
    return this.used;
  }

  /** Logs with a file on disk now (finished, or running logs' files, or being written). */
  get count(): number {
    return this.files.size;
  }

  /** Queues a finished log to be written out (see the policy above). */
  spill(log: SpillableLog): void {
    // A failure is the log's own (it stays in memory); it must not stop the spills after it.
    this.queue = this.queue
      .then(() => this.write(log))
      .catch((err: unknown) => this.opts.log.warn({ err }, 'could not spill a finished event log; it stays in memory'));
  }

  /** Resolves once the directory is ready and every spill queued so far is over. */
  async settled(): Promise<void> {
    await this.ready;
    await this.queue;
  }

  stored(log: SpillableLog, file: string, bytes: number): void {
    // A running log's file, finished: counted anew, and in the order of logs finished.
    const old = this.files.get(log);
    if (old) {
      this.files.delete(log);
      this.used -= old.bytes;
    }
    this.files.set(log, { file, bytes });
    this.used += bytes;
  }

  get available(): boolean {
    return this.isReady && !this.closing;
  }

  tailPath(_log: SpillableLog): string | null {
    if (this.closing || !this.isReady) return null;
    return join(this.opts.dir, `${this.nextName++}.ndjson`);
  }

  grow(log: SpillableLog, file: string, bytes: number): boolean {
    if (this.closing || !this.makeRoom(log, bytes)) return false;
    const f = this.files.get(log);
    if (f) f.bytes += bytes;
    else this.files.set(log, { file, bytes });
    this.used += bytes;
    return true;
  }

  failed(_log: SpillableLog, err: unknown): void {
    // Closing removes the directory under the writes still going: not worth a warning.
    if (this.closing) return;
    this.opts.log.warn({ err }, 'could not write a running event log to disk; its newer events stay in memory');
  }

  discard(log: SpillableLog): void {
    const f = this.files.get(log);
    if (!f) return;
    this.files.delete(log);
    this.used -= f.bytes;
    unlink(f.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.opts.log.warn({ err, file: f.file }, 'could not remove a spilled event log');
    });
  }

  /**
   * Stops spilling, waits for the write in progress, and removes every file: the spilled logs
   * are released (a reader still on one gets a `gap` up to its newest event, not an error).
   */
  async close(): Promise<void> {
    this.closing = true;
    await this.settled();
    for (const log of [...this.files.keys()]) log.release();
    if (await this.ready) await rm(this.opts.dir, { recursive: true, force: true });
  }

  private collect(): void {
    if (this.freed < COLLECT_AFTER_BYTES) return;
    this.freed = 0;
    (this.opts.collect ?? collectGarbage)();
  }

  private async removeLeftovers(): Promise<false> {
    await rm(this.opts.dir, { recursive: true, force: true }).catch((err: unknown) =>
      this.opts.log.warn({ err, dir: this.opts.dir }, 'could not remove the event logs a previous server left on disk'),
    );
    return false;
  }

  private async prepare(): Promise<boolean> {
    try {
      await rm(this.opts.dir, { recursive: true, force: true });
      await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
      return true;
    } catch (err) {
      this.opts.log.warn({ err, dir: this.opts.dir }, 'cannot keep finished event logs on disk; they stay in memory');
      return false;
    }
  }

  /**
   * Makes room for `bytes` more, as retention does: the oldest finished logs on disk are
   * forgotten first (never a running one, nor `log` itself). False when they cannot make enough.
   */
  private makeRoom(log: SpillableLog, bytes: number): boolean {
    if (this.used + bytes <= this.opts.maxBytes) return true;
    let forgettable = 0;
    for (const [old, f] of this.files) if (old !== log && old.closed) forgettable += f.bytes;
    if (this.used - forgettable + bytes > this.opts.maxBytes) return false;
    // (Should the write then fail, they are gone for nothing; the disk budget is a bound, kept either way.)
    for (const old of [...this.files.keys()]) {
      if (this.used + bytes <= this.opts.maxBytes) break;
      if (old !== log && old.closed) old.release();
    }
    return true;
  }

  private async write(log: SpillableLog): Promise<void> {
    // A log forgotten (released) before its turn stays forgotten: its file would outlive retention.
    if (this.closing || !log.closed || log.released || log.onDisk || !(await this.ready)) return;
    // A log that began its file while it ran finishes it, however little it holds now.
    const running = log.tailFile;
    if (running === null && log.bytes < this.minBytes) return;
    const size = await log.spillSize();
    if (this.closing || log.released) return;
    if (running === null && (size > this.opts.maxBytes || log.bytes < this.minBytes)) return;
    const file = running ?? join(this.opts.dir, `${this.nextName++}.ndjson`);
    // Counted at once, so that running logs growing meanwhile cannot take the room.
    if (!this.grow(log, file, size)) return;
    const held = log.bytes;
    try {
      if (!(await log.spillTo(file, this))) {
        if (log.tailFile === null) this.uncount(log);
        return;
      }
      // What a running log let go into its file counts too: that memory is garbage only a full
      // collection returns (V8 promoted much of it while the stream went on).
      this.freed += held - log.bytes + (running !== null ? log.movedOut : 0);
      if (this.freed >= COLLECT_AFTER_BYTES) setImmediate(() => this.collect());
    } catch (err) {
      this.opts.log.warn({ err, file }, 'could not write a finished event log to disk; it stays in memory');
      // A running log's file (begun before this write, or while it waited) holds events that are
      // no longer in memory: it stays, counted.
      if (log.tailFile === null) {
        this.uncount(log);
        await rm(file, { force: true }).catch(() => {});
      }
    }
  }

  /** Stops counting a file that was never written (its room was counted before the write). */
  private uncount(log: SpillableLog): void {
    const f = this.files.get(log);
    if (!f || log.onDisk) return;
    this.files.delete(log);
    this.used -= f.bytes;
  }
}
