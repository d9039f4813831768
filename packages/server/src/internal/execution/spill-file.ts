/**
 * The file a finished event log spills to: its held events' JSON, one per line (JSON escapes
 * every newline inside a string, so a line is an event), in seq order. A sparse index (the
 * seq and byte offset of every INDEX_EVENTS-th event, or sooner after INDEX_BYTES) finds any
 * seq by reading at most that much before it. Reads are in bounded chunks: whole lines, at
 * most `maxBytes` unless one event alone is longer.
 *
 * The file holds each event exactly as the log stored it: UTF-8 of a string that
 * JSON.stringify made well-formed (lone surrogates escaped), so decoding it gives the same string.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Index granularity: a new entry after this many events or bytes since the last one. */
const INDEX_EVENTS = 64;
const INDEX_BYTES = 64 * 1024;
/**
 * Bytes gathered into one write (few writes: each waits for a turn of a busy event loop). One
 * buffer per spill, at most this size, filled again for each write: a fresh 4 MiB string and
 * buffer per write (a join, then Buffer.from) were two mappings of new memory each time, and on
 * a virtual machine whose page faults cost ~12 µs that was more than a second of the server's
 * CPU per 200 MiB spilled (strace: one mmap/munmap pair per write, ~2000 page faults).
 */
const WRITE_BYTES = 4 * 1024 * 1024;
/** Characters measured between two yields to the event loop while sizing a log. */
const SIZE_SLICE_CHARS = 8 * 1024 * 1024;
const NEWLINE = 0x0a;

/** Where each indexed event starts: parallel arrays, seqs increasing. */
export interface SpillIndex {
  readonly seqs: Float64Array;
  readonly offsets: Float64Array;
}

/** An index being built (SpillWriter's) or finished. */
type IndexView = { readonly seqs: ArrayLike<number>; readonly offsets: ArrayLike<number> };

/** What writeSpill wrote. */
export interface SpillFile {
  readonly file: string;
  /** File size, bytes. */
  readonly bytes: number;
  readonly index: SpillIndex;
  /** Events in the file, the oldest's seq, and how many of each type. */
  readonly count: number;
  readonly firstSeq: number;
  readonly types: Readonly<Record<string, number>>;
  /** The newest event (a released log keeps it) and the seq of the one before it (null if alone). */
  readonly last: string;
  readonly lastSeq: number;
  readonly prevSeq: number | null;
}

/** One event read back. */
export interface SpilledLine {
  readonly seq: number;
  readonly json: string;
}

/** Lines read from `offset`; `end` is the offset after the last line consumed (skipped ones included). */
export interface SpillChunk {
  readonly lines: SpilledLine[];
  readonly end: number;
}

/** The UTF-8 size of the file that writeSpill would write for these events, yielding to the event loop as it goes. */
export async function spillSize(jsons: readonly string[], from: number): Promise<number> {
  let bytes = 0;
  let chars = 0;
  for (let i = from; i < jsons.length; i++) {
    const json = jsons[i];
    if (!json) continue;
    bytes += Buffer.byteLength(json) + 1;
    chars += json.length;
    if (chars >= SIZE_SLICE_CHARS) {
      chars = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return bytes;
}

/**
 * Writes the non-empty `jsons[from..]` (with their `seqs`) to a new file (it must not exist), in
 * chunks, each awaited: the event loop runs between them. Throws on any failure; the caller
 * removes what was written.
 */
export async function writeSpill(file: string, jsons: readonly string[], seqs: readonly number[], from: number, typeOf: (json: string) => string): Promise<SpillFile> {
  const w = await SpillWriter.create(file, typeOf);
  try {
    await w.append(jsons, seqs, from, jsons.length);
    return await w.finish();
  } finally {
    await w.close();
  }
}

/**
 * A spill file written in parts: a running log writes its older events as it grows (event-log.ts),
 * and finishes the same file when it ends. An append counts (index, `bytes`, newest event) only
 * once all of it is written, so a reader bounded by `bytes` reads whole, final lines; an append
 * that fails counts nothing, and the next one writes over what it left.
 */
export class SpillWriter {
  private committed = 0;
  private readonly indexSeqs: number[] = [];
  private readonly indexOffsets: number[] = [];
  private readonly types: Record<string, number> = {};
  private sinceEvents = INDEX_EVENTS;
  private sinceBytes = 0;
  private count = 0;
  private firstSeq = 0;
  private lastSeq: number | null = null;
  private prevSeq: number | null = null;
  private last = '';
  /** One buffer per file, filled again for each write (see WRITE_BYTES). */
  private buf: Buffer | null = null;
  private closed: Promise<void> | null = null;

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    private readonly typeOf: (json: string) => string,
  ) {}

  /** Creates `file` (it must not exist). */
  static async create(file: string, typeOf: (json: string) => string): Promise<SpillWriter> {
    return new SpillWriter(file, await open(file, 'wx', 0o600), typeOf);
  }

  /** Bytes of whole events written. */
  get bytes(): number {
    return this.committed;
  }

  /** seq of the newest event written, 0 when none is. */
  get newestSeq(): number {
    return this.lastSeq ?? 0;
  }

  /** Memory the index takes, bytes (as indexBytes counts a finished file's). */
  get indexBytes(): number {
    return 16 * this.indexSeqs.length;
  }

  /** Where to start reading for `seq` (see offsetOf). */
  offsetOf(seq: number): number {
    return offsetOf({ seqs: this.indexSeqs, offsets: this.indexOffsets }, seq);
  }

  /** Events written and how many of each type, for a release that forgets them. */
  summary(): { count: number; firstSeq: number; lastSeq: number; types: Readonly<Record<string, number>> } {
    return { count: this.count, firstSeq: this.firstSeq, lastSeq: this.lastSeq ?? 0, types: this.types };
  }

  /**
   * Writes the non-empty `jsons[from..to)` after what the file holds; returns the bytes written.
   * `bytes`, when the caller knows it, is their exact size (the buffer is then no bigger).
   */
  async append(jsons: readonly string[], seqs: readonly number[], from: number, to: number, bytes?: number): Promise<number> {
    const start = this.committed;
    let offset = start;
    let { sinceEvents, sinceBytes, count, firstSeq, lastSeq, prevSeq, last } = this;
    const indexSeqs: number[] = [];
    const indexOffsets: number[] = [];
    const types: Record<string, number> = {};
    // No bigger than the events need (a UTF-16 unit is at most 3 bytes of UTF-8): most logs are small.
    let chars = 0;
    for (let i = from; i < to && chars < WRITE_BYTES; i++) chars += (jsons[i]?.length ?? 0) + 1;
    const need = Math.min(WRITE_BYTES, bytes ?? 3 * chars);
    if (!this.buf || this.buf.length < need) this.buf = Buffer.allocUnsafe(need);
    const out = this.buf;
    let used = 0;
    let written = start;
    for (let i = from; i < to; i++) {
      const json = jsons[i];
      const seq = seqs[i];
      if (!json || seq === undefined) continue;
      if (sinceEvents >= INDEX_EVENTS || sinceBytes >= INDEX_BYTES) {
        indexSeqs.push(seq);
        indexOffsets.push(offset);
        sinceEvents = sinceBytes = 0;
      }
      const size = Buffer.byteLength(json) + 1;
      offset += size;
      sinceBytes += size;
      sinceEvents++;
      const type = this.typeOf(json);
      types[type] = (types[type] ?? 0) + 1;
      if (count++ === 0) firstSeq = seq;
      prevSeq = lastSeq;
      lastSeq = seq;
      last = json;
      if (used + size > out.length) {
        written += await writeAll(this.fh, out.subarray(0, used), written);
        used = 0;
      }
      if (size > out.length) {
        // One event longer than the buffer: its own write.
        written += await writeAll(this.fh, Buffer.from(`${json}\n`), written);
        continue;
      }
      used += out.write(json, used);
      out[used++] = NEWLINE;
    }
    if (used > 0) written += await writeAll(this.fh, out.subarray(0, used), written);
    // All written: it counts.
    for (let k = 0; k < indexSeqs.length; k++) {
      this.indexSeqs.push(indexSeqs[k] ?? 0);
      this.indexOffsets.push(indexOffsets[k] ?? 0);
    }
    for (const [type, n] of Object.entries(types)) this.types[type] = (this.types[type] ?? 0) + n;
    this.sinceEvents = sinceEvents;
    this.sinceBytes = sinceBytes;
    this.count = count;
    this.firstSeq = firstSeq;
    this.lastSeq = lastSeq;
    this.prevSeq = prevSeq;
    this.last = last;
    this.committed = offset;
    return offset - start;
  }

  /** The finished file: cut to what counts (a failed append may have left more) and described. */
  async finish(): Promise<SpillFile> {
    if (this.lastSeq === null) throw new Error('no events to spill');
    await this.fh.truncate(this.committed);
    return {
      file: this.file,
      bytes: this.committed,
      index: { seqs: Float64Array.from(this.indexSeqs), offsets: Float64Array.from(this.indexOffsets) },
      count: this.count,
      firstSeq: this.firstSeq,
      types: { ...this.types },
      last: this.last,
      lastSeq: this.lastSeq,
      prevSeq: this.prevSeq,
    };
  }

  /** Closes the file (once; later calls wait for the first). */
  close(): Promise<void> {
    this.closed ??= this.fh.close();
    return this.closed;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  for (let done = 0; done < buf.length; ) done += (await fh.write(buf, done, buf.length - done, position + done)).bytesWritten;
  return buf.length;
}

/** Offset of the indexed event nearest at or before `seq` (the file's start when `seq` precedes them all). */
export function offsetOf(index: IndexView, seq: number): number {
  let lo = 0;
  let hi = index.seqs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((index.seqs[mid] ?? Infinity) <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? 0 : (index.offsets[lo - 1] ?? 0);
}

/** Memory the index takes, bytes (both arrays' elements). */
export function indexBytes(index: SpillIndex): number {
  return index.seqs.byteLength + index.offsets.byteLength;
}

/**
 * A reader's buffer for readSpill, kept from one read to the next: a fresh 1 MiB buffer per read
 * was a fresh mapping each time (page faults at ~12 µs each on a VM, ~0.6 s of CPU to replay
 * 200 MiB). Only buffers up to the normal read size are kept; a longer event's is let go.
 */
export interface SpillScratch {
  buf: Buffer | null;
}

/**
 * Reads whole lines from `offset`: up to `maxLines` with seq >= `fromSeq` (older ones are passed
 * over undecoded), within about `maxBytes`. An empty chunk with `end === offset` is the file's end.
 * The lines are decoded copies, so `scratch` may be reused as soon as this returns.
 */
export async function readSpill(target: string | FileHandle, offset: number, maxBytes: number, maxLines: number, fromSeq: number, scratch?: SpillScratch): Promise<SpillChunk> {
  const fh = typeof target === 'string' ? await open(target, 'r') : target;
  try {
    for (let size = maxBytes; ; size *= 2) {
      let buf = scratch?.buf;
      if (!buf || buf.length < size) {
        buf = Buffer.allocUnsafe(size);
        if (scratch && size <= maxBytes) scratch.buf = buf;
      }
      const { bytesRead } = await fh.read(buf, 0, size, offset);
      const chunk = splitLines(buf.subarray(0, bytesRead), offset, maxLines, fromSeq);
      // No whole line in a full buffer: one event is longer than it; read that event whole.
      if (chunk.end > offset || bytesRead < size) return chunk;
    }
  } finally {
    if (typeof target === 'string') await fh.close();
  }
}

/** readSpill's synchronous twin (for the synchronous accessors that tests and tools use); reads up to `end` at most. */
export function* readSpillSync(file: string, fromSeq: number, maxBytes: number, end = Infinity): Generator<SpilledLine> {
  const fd = openSync(file, 'r');
  try {
    let offset = 0;
    for (let size = maxBytes; offset < end; ) {
      const want = Math.min(size, end - offset);
      const buf = Buffer.allocUnsafe(want);
      const bytesRead = readSync(fd, buf, 0, want, offset);
      const chunk = splitLines(buf.subarray(0, bytesRead), offset, Infinity, fromSeq);
      if (chunk.end === offset) {
        // The end, or no whole line before `end` (none is cut there: it ends a write).
        if (bytesRead < want || want < size) return;
        size *= 2;
        continue;
      }
      yield* chunk.lines;
      offset = chunk.end;
      size = maxBytes;
    }
  } finally {
    closeSync(fd);
  }
}

/** The whole lines of `buf` (read at `offset`), decoding only those wanted. */
function splitLines(buf: Buffer, offset: number, maxLines: number, fromSeq: number): SpillChunk {
  const lines: SpilledLine[] = [];
  let pos = 0;
  while (lines.length < maxLines) {
    const nl = buf.indexOf(NEWLINE, pos);
    if (nl < 0) break;
    const seq = seqAt(buf, pos);
    if (seq >= fromSeq) lines.push({ seq, json: buf.toString('utf8', pos, nl) });
    pos = nl + 1;
  }
  return { lines, end: offset + pos };
}

/** The seq of the event starting at `pos`: the log writes `{"type":"…","seq":N,…` (event-log.ts serialise). */
function seqAt(buf: Buffer, pos: number): number {
  // The type has no quote in it; after its closing quote come `,"seq":` (7 bytes) and the digits.
  let i = buf.indexOf(0x22, pos + 9) + 8;
  let seq = 0;
  for (let c = buf[i]; c !== undefined && c >= 0x30 && c <= 0x39; c = buf[++i]) seq = seq * 10 + (c - 0x30);
  return seq;
}
