/**
 * An event log in Redis, so that any process can replay and follow a log another one writes.
 *
 * Keys (redis-connection.ts names them; `{id}` is a Cluster hash tag):
 *   - `sluice:log:{id}`: a stream, one entry per event, entry id `<seq>-0` (the id IS the seq),
 *     one field `j` holding the event's JSON exactly as it goes on the wire.
 *   - `sluice:log:{id}:meta`: a hash: `epoch` (random, chosen by the writer when it creates the
 *     log), `last` (the newest seq stored), `closed` (`1` once the last event is in),
 *     `evicted` (JSON EvictedEvents: what the bound dropped), `ended` (`1` when endIfOpen closed
 *     it, not its writer: the writer's later appends are refused as `ended`).
 *   The close adds one more stream entry, `<last seq>-1` (field `c`): not an event, it wakes the
 *   followers blocked in XREAD, which then read `closed`.
 * Both keys always have a TTL: `liveTTLSec` while the log is written (refreshed by every append and,
 * when the program is quiet, by a timer), `retentionSec` once it is closed.
 *
 * One writer per log (RedisLogWriter). Every append goes through one Lua script that checks the
 * epoch: when Redis lost the log (restarted without persistence, or flushed) the hash is gone or
 * different, the script refuses, and the writer fails with `lost` instead of writing a log that
 * starts in the middle. The script skips seqs at or below `last`, so a batch resent after a
 * dropped connection (its reply lost) is stored once.
 *
 * Bounds: the stream keeps at most `maxBytes` of JSON and `maxEntries` events, trimmed oldest
 * first with an exact `MINID` in the same XADD (the writer knows every size, so it computes the
 * id); the newest event always stays. Appends wait in the writer's memory only while a batch is
 * in flight: at most `maxPendingBytes`, past which the EventLog's overflow policy applies to the
 * waiting events (old progress but the newest, then results, then the oldest), so a Redis slower
 * than the program costs events in the middle (readers get `gap`, `evicted` counts them), never
 * unbounded memory and never the newest event.
 *
 * Readers (RedisLogReader) replay with XRANGE (with the log's state, in one MULTI), then follow
 * with XREAD BLOCK on a connection lent to them alone for that call (BlockingPool), always from
 * the last seq they got, never `$`; they read the state again only when a BLOCK times out (to
 * notice a lost log) or the end marker comes. Each read asks for about READ_BYTES of JSON
 * (COUNT adapts to the events' size). A missing run of seqs becomes a `gap` entry as in
 * EventLog. A log whose epoch changed or vanished before it closed ends the follower with a
 * `gap` up to the newest seq it knew of and a RedisLogError `lost`: never silence.
 *
 * Every call to Redis, the writer's and the readers', is bounded: a connection that stops
 * answering without closing (half-open) is replaced (forceReconnect) when a call outlives its
 * bound, and the caller's loop retries or gives up with `unavailable` at its own bound.
 */
import { randomBytes } from 'node:crypto';
import type { EventType, EvictedEvents, ExecutionEvent } from '@sluice/protocol';
import type { Redis } from 'ioredis';
import { serialise, type ChannelTypes, type NewEvent } from '../execution/event-log.js';
import { EvictedTally, noneEvicted } from '../execution/evicted-tally.js';
import type { OpenedLog } from '../execution/log-store.js';
import { gapEntry, typeOf, type LogEntry, type LoggedEvent, type ReadableLog } from '../execution/readable-log.js';
import { forceClose, within, type LogKeys, type RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';

/**
 * Why a Redis log cannot go on: `lost` = Redis no longer holds it; `unavailable` = Redis did not
 * answer in time; `ended` = someone else ended it (endIfOpen: a reaper, after this worker's
 * lease ran out), so this writer's later events are refused.
 */
export type RedisLogFailure = 'lost' | 'unavailable' | 'exists' | 'ended';

/** A log in Redis that cannot be written or read any more; the server answers SANDBOX_UNAVAILABLE. */
export class RedisLogError extends Error {
  override readonly name = 'RedisLogError';
  constructor(
    readonly reason: RedisLogFailure,
    message: string,
  ) {
    super(message);
  }
}

/** The bounds and timings of one log (every field has a default). */
export interface RedisLogOptions {
  /** JSON bytes the stream keeps; past it the oldest events are trimmed. 64 MiB. */
  maxBytes?: number;
  /** Events the stream keeps (and the writer's index of them). 200 000. */
  maxEntries?: number;
  /** Which event types the pending overflow drops first (an execution's by default). */
  channel?: ChannelTypes;
  /** TTL of the keys while the log is written, seconds; refreshed at a quarter of it when quiet. 3600. */
  liveTTLSec?: number;
  /** TTL of the keys once the log is closed, seconds (SLUICE_LOG_RETENTION). 3600. */
  retentionSec?: number;
  /** JSON bytes of events waiting for Redis in the writer; past it the overflow policy drops some. 8 MiB. */
  maxPendingBytes?: number;
  /** Most events and JSON bytes sent in one script call. 1024 and 1 MiB. */
  maxBatchEntries?: number;
  maxBatchBytes?: number;
  /** How long a write may go unanswered (Redis down, paused, slow) before the writer fails, ms. 10 000. */
  writeTimeoutMs?: number;
  /** Told once when the writer fails (then `failure` says why, and close() rejects). */
  onFailure?: (err: RedisLogError) => void;
}

/** How a reader waits (every field has a default). */
export interface RedisReaderOptions {
  /** BLOCK of one XREAD, ms: how often a waiting follower checks that the log still exists. 2000. */
  blockMs?: number;
  /** How long Redis may be unreachable before a follower gives up with `unavailable`, ms. 30 000. */
  unavailableMs?: number;
  /**
   * How long one call may go unanswered (beyond its BLOCK) before its connection counts as
   * broken and is replaced, ms; at most `unavailableMs`. 5000.
   */
  callTimeoutMs?: number;
}



const MiB = 1024 * 1024;
/** Most events a reader gets in one batch (as EventLog). */
const BATCH = 512;
/** JSON bytes a reader asks for in one XRANGE / XREAD: COUNT is this over the events' recent mean size. */
const READ_BYTES = MiB;
/** The mean event size a reader assumes before it has read any (an output chunk's bound). */
const FIRST_GUESS_BYTES = 64 * 1024;
/** A waiting event dropped by the overflow policy. */
const HOLE = '';

/**
 * Creates the log's state; refuses if it exists (ids are random: that is a bug or a replay),
 * unless with this very epoch: a resend after the first call's reply was lost.
 * KEYS: meta. ARGV: epoch, ttl ms.
 */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then return 1 end
  return redis.error_reply('SLUICE_EXISTS log exists')
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'last', '0', 'closed', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** Deletes a log its writer discards, only if it is still that writer's. KEYS: stream, meta. ARGV: epoch. */
const DISCARD = `
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;

/**
 * Appends a batch. KEYS: stream, meta. ARGV: epoch, live ttl ms, minid, close (1/0),
 * retention ms, evicted JSON ('' = unchanged), then seq and JSON of each event, in order.
 * Returns the newest seq stored.
 */
const APPEND = `
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then
  return redis.error_reply('SLUICE_EPOCH the log is gone from Redis or belongs to another writer')
end
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
if redis.call('HGET', KEYS[2], 'closed') == '1' then
  if redis.call('HGET', KEYS[2], 'ended') == '1' then
    return redis.error_reply('SLUICE_ENDED the log was ended by someone else (its worker was declared dead)')
  end
  return last
end
for i = 7, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], 'MINID', ARGV[3], ARGV[i] .. '-0', 'j', ARGV[i + 1])
    last = seq
  end
end
redis.call('HSET', KEYS[2], 'last', last)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'evicted', ARGV[6]) end
local ttl = ARGV[2]
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'closed', '1')
  redis.call('XADD', KEYS[1], 'MINID', ARGV[3], last .. '-1', 'c', '1')
  ttl = ARGV[5]
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return last
`;

/**
 * Ends a log that is still open with one terminal event, atomically against its writer.
 * KEYS: stream, meta. ARGV: the `last` the caller read, the event's JSON (its seq is last + 1),
 * retention ms, the terminal event's type, and the JSON of an event to append before it ('' for
 * none; then the terminal event's seq is last + 2).
 * Returns 1 (ended it: event appended, unless the newest stored event already is one of that
 * type, then only closed), 0 (already closed), -1 (no such log), -2 (`last` moved: read again).
 */
const END_IF_OPEN = `
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
if redis.call('HGET', KEYS[2], 'closed') == '1' then return 0 end
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
if last ~= tonumber(ARGV[1]) then return -2 end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local already = false
if newest and last > 0 and newest[1] == last .. '-0' then
  already = string.sub(newest[2][2], 1, #ARGV[4] + 10) == '{"type":"' .. ARGV[4] .. '"'
end
if not already then
  if ARGV[5] ~= nil and ARGV[5] ~= '' then
    last = last + 1
    redis.call('XADD', KEYS[1], last .. '-0', 'j', ARGV[5])
  end
  last = last + 1
  redis.call('XADD', KEYS[1], last .. '-0', 'j', ARGV[2])
end
redis.call('HSET', KEYS[2], 'last', last, 'closed', '1', 'ended', '1')
redis.call('XADD', KEYS[1], last .. '-1', 'c', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/**
 * Ends the log `id` with `event` (e.g. `done` with `reason: "sandbox_lost"`) unless it is closed
 * already, atomically: whether the writer's own end or this one gets there first, the log ends
 * with exactly one terminal event, and a writer that comes later fails with `ended`. Resolves
 * true when this call ended it, false when it was closed already or does not exist. The keys then
 * live `retentionSec` (3600). `before` (an agent run's `error`) goes just before `event`, in the same step.
 */
export async function endIfOpen<E extends LoggedEvent = ExecutionEvent>(
  conn: RedisConnection,
  id: string,
  event: NewEvent<E>,
  opts: { retentionSec?: number; timeoutMs?: number; before?: NewEvent<E> } = {},
): Promise<boolean> {
  const keys = conn.logKeys(id);
  const retentionMs = Math.ceil((opts.retentionSec ?? 3600) * 1000);
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const last = Number((await retrying(Math.max(1, deadline - Date.now()), conn.reader, () => conn.reader.hget(keys.meta, 'last'))) ?? 0);
    const before = opts.before === undefined ? '' : serialise(opts.before, last + 1);
    const json = serialise(event, last + (before === '' ? 1 : 2));
    const r = await retrying(Math.max(1, deadline - Date.now()), conn.writer, () => runScript(conn.writer, END_IF_OPEN, [keys.stream, keys.meta], [last, json, retentionMs, event.type, before]));
    if (r === 1) return true;
    if (r === 0 || r === -1) return false;
    // The writer appended meanwhile: read `last` again (each round is one writer batch behind at most).
    if (Date.now() > deadline) throw new RedisLogError('unavailable', `could not end log ${id} within ${opts.timeoutMs ?? 10_000} ms: its writer kept appending`);
  }
}

/** One script call's contents, kept until Redis answers (a retry resends it as it is). */
interface Batch {
  seqs: number[];
  jsons: string[];
  minID: number;
  close: boolean;
  evicted: string;
}

/** The writer of one log; `E` is the union of its events. */
export class RedisLogWriter<E extends LoggedEvent = ExecutionEvent> {
  // Waiting for Redis: parallel arrays from `head`, HOLE where the overflow policy dropped one.
  private pendSeqs: number[] = [];
  private pendJsons: string[] = [];
  private pendOut: number[] = [];
  private head = 0;
  private pendingBytes = 0;
  /** Waiting progress / result events (the overflow policy's first choices). */
  private pendProgress = 0;
  private pendResults = 0;
  // Stored in Redis, oldest first from `heldHead`: seq, JSON bytes, type, output bytes (for `evicted`).
  private heldSeqs: number[] = [];
  private heldBytes: number[] = [];
  private heldTypes: EventType[] = [];
  private heldOut: number[] = [];
  private heldHead = 0;
  private heldTotal = 0;
  private readonly lost = new EvictedTally();
  private lostChanged = false;

  private nextSeq = 1;
  private stored = 0;
  private isClosed = false;
  private closeStored = false;
  private flushing = false;
  private failed: RedisLogError | null = null;
  private waiters: { seq: number; closing: boolean; resolve: () => void; reject: (err: Error) => void }[] = [];
  private refresh: NodeJS.Timeout | null = null;

  private readonly o: Required<Omit<RedisLogOptions, 'onFailure'>>;
  /** The TTLs in whole ms (PEXPIRE takes integers only). */
  private readonly liveTTLMs: number;
  private readonly retentionMs: number;
  private readonly onFailure: ((err: RedisLogError) => void) | null;
  private readonly progressPrefix: string;
  private readonly resultPrefix: string;

  private constructor(
    private readonly conn: RedisConnection,
    readonly id: string,
    private readonly keys: LogKeys,
    private readonly epoch: string,
    opts: RedisLogOptions,
  ) {
    this.o = {
      maxBytes: opts.maxBytes ?? 64 * MiB,
      maxEntries: opts.maxEntries ?? 200_000,
      channel: opts.channel ?? { progress: 'progress', result: 'result' },
      liveTTLSec: opts.liveTTLSec ?? 3600,
      retentionSec: opts.retentionSec ?? 3600,
      maxPendingBytes: opts.maxPendingBytes ?? 8 * MiB,
      maxBatchEntries: opts.maxBatchEntries ?? 1024,
      maxBatchBytes: opts.maxBatchBytes ?? MiB,
      writeTimeoutMs: opts.writeTimeoutMs ?? 10_000,
    };
    this.liveTTLMs = Math.max(1, Math.ceil(this.o.liveTTLSec * 1000));
    this.retentionMs = Math.max(1, Math.ceil(this.o.retentionSec * 1000));
    this.onFailure = opts.onFailure ?? null;
    this.progressPrefix = `{"type":"${this.o.channel.progress}"`;
    this.resultPrefix = `{"type":"${this.o.channel.result}"`;
    // A quiet program's log must not expire under it; the refresh also notices a lost log early.
    // The timer holds the writer weakly: a writer its owner forgot (neither closed nor
    // abandoned) is collected, the timer stops, and the log expires after liveTTLSec instead of
    // being kept alive for ever by a timer nobody can reach.
    const self = new WeakRef(this);
    const timer = setInterval(() => {
      const w = self.deref();
      if (!w) clearInterval(timer);
      else if (!w.flushing && !w.isClosed) w.kick();
    }, Math.max(1, Math.floor(this.liveTTLMs / 4)));
    timer.unref();
    this.refresh = timer;
  }

  /** Creates the log `id` in Redis (with a new epoch) and its writer; rejects when Redis cannot take it in time. */
  static async create<E extends LoggedEvent = ExecutionEvent>(conn: RedisConnection, id: string, opts: RedisLogOptions = {}): Promise<RedisLogWriter<E>> {
    const keys = conn.logKeys(id);
    const epoch = randomBytes(12).toString('base64url');
    const ttl = Math.max(1, Math.ceil((opts.liveTTLSec ?? 3600) * 1000));
    await retrying(opts.writeTimeoutMs ?? 10_000, conn.writer, () => runScript(conn.writer, CREATE, [keys.meta], [epoch, ttl]));
    return new RedisLogWriter<E>(conn, id, keys, epoch, opts);
  }

  /** seq of the newest event appended, 0 when empty. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** seq of the newest event Redis holds (or dropped by the bound). */
  get storedSeq(): number {
    return this.stored;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Why the writer stopped, or null while it works. */
  get failure(): RedisLogError | null {
    return this.failed;
  }

  /** What the bounds dropped so far (a copy). */
  get evicted(): EvictedEvents {
    return this.lost.copy();
  }

  /**
   * Appends an event, assigning its `seq` and `ts`, and returns it as readers will get it; it
   * reaches Redis with the next batch. Throws once the log is closed or the writer failed.
   */
  append(event: NewEvent<E>): LogEntry<E['type']> {
    if (this.failed) throw this.failed;
    if (this.isClosed) throw new Error('event log is closed');
    const seq = this.nextSeq++;
    const json = serialise(event, seq);
    const content = (event as { content?: unknown }).content;
    const out = (event.type === 'stdout' || event.type === 'stderr') && typeof content === 'string' ? Buffer.byteLength(content) : 0;
    this.enqueue(seq, json, out);
    return { seq, type: event.type as E['type'], json };
  }

  /**
   * Stores an event another log already serialised, with that log's `seq` (a worker teeing its
   * local EventLog into Redis: the same seqs, the same JSON). `seq` must be past every seq
   * appended so far and `json` must be the event as it goes on the wire with that seq in it
   * (`{"type":…,"seq":<seq>,…}`). Seqs skipped (the local log shed them) are not stored:
   * readers get a `gap` for them, and `evicted` counts them (their types and bytes unknown here).
   * Throws as append does, and on a seq that does not move forward.
   */
  appendEntry(seq: number, json: string): LogEntry<E['type']> {
    if (this.failed) throw this.failed;
    if (this.isClosed) throw new Error('event log is closed');
    if (!Number.isSafeInteger(seq) || seq < this.nextSeq) throw new RangeError(`seq ${seq} is not past the log's newest (${this.lastSeq})`);
    if (!json.startsWith('{"type":"')) throw new TypeError(`not a serialised event: ${json.slice(0, 40)}`);
    if (seq > this.nextSeq) this.countSkipped(this.nextSeq, seq - 1);
    this.nextSeq = seq + 1;
    const type = typeOf(json);
    this.enqueue(seq, json, type === 'stdout' || type === 'stderr' ? outputBytes(json) : 0);
    return { seq, type: type as E['type'], json };
  }

  private enqueue(seq: number, json: string, out: number): void {
    this.pendSeqs.push(seq);
    this.pendJsons.push(json);
    this.pendOut.push(out);
    this.pendingBytes += json.length;
    if (json.startsWith(this.progressPrefix)) this.pendProgress++;
    else if (json.startsWith(this.resultPrefix)) this.pendResults++;
    if (this.pendingBytes > this.o.maxPendingBytes) this.overflow();
    this.kick();
  }

  /** Resolves once every event appended so far is in Redis (or dropped by the bounds); rejects when the writer failed. */
  flushed(): Promise<void> {
    return this.waitFor(this.lastSeq, false);
  }

  /**
   * Marks the log complete and stores that with its last events; resolves once Redis holds it
   * (its keys then live `retentionSec`), rejects with the RedisLogError when it cannot.
   */
  close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      this.kick();
    }
    return this.waitFor(this.lastSeq, true);
  }

  /** Stops the refresh timer without closing the log (its keys expire after `liveTTLSec`). */
  abandon(): void {
    if (this.refresh) clearInterval(this.refresh);
    this.refresh = null;
  }

  /**
   * For a log whose work never started: stops the writer and deletes its keys, so an empty
   * open log does not linger for `liveTTLSec` (a reader of it would wait for events that never come).
   */
  async discard(): Promise<void> {
    this.abandon();
    this.isClosed = true;
    await retrying(this.o.writeTimeoutMs, this.conn.writer, () => runScript(this.conn.writer, DISCARD, [this.keys.stream, this.keys.meta], [this.epoch]));
  }

  private waitFor(seq: number, closing: boolean): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.stored >= seq && (!closing || this.closeStored)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ seq, closing, resolve, reject }));
  }

  private kick(): void {
    if (this.flushing || this.failed) return;
    this.flushing = true;
    // A microtask later: a synchronous burst of appends goes out as one batch.
    queueMicrotask(() => void this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    try {
      for (;;) {
        const batch = this.takeBatch();
        await retrying(this.o.writeTimeoutMs, this.conn.writer, () =>
          runScript(this.conn.writer, APPEND, [this.keys.stream, this.keys.meta], [
            this.epoch,
            this.liveTTLMs,
            batch.minID,
            batch.close ? 1 : 0,
            this.retentionMs,
            batch.evicted,
            ...interleave(batch.seqs, batch.jsons),
          ]),
        );
        const newest = batch.seqs[batch.seqs.length - 1];
        if (newest !== undefined) this.stored = newest;
        // Seqs the overflow dropped while waiting count as done too.
        if (this.head >= this.pendSeqs.length) this.stored = this.lastSeq;
        if (batch.close) {
          this.closeStored = true;
          this.abandon();
        }
        this.settle();
        if (this.head >= this.pendSeqs.length && (!this.isClosed || this.closeStored)) break;
      }
      this.flushing = false;
    } catch (err) {
      this.fail(err instanceof RedisLogError ? err : new RedisLogError('unavailable', String(err)));
    }
  }

  /** Takes the next batch off the waiting events (possibly none: a TTL refresh or the close). */
  private takeBatch(): Batch {
    const seqs: number[] = [];
    const jsons: string[] = [];
    let bytes = 0;
    while (this.head < this.pendSeqs.length && seqs.length < this.o.maxBatchEntries && (bytes < this.o.maxBatchBytes || seqs.length === 0)) {
      const i = this.head++;
      const json = this.pendJsons[i] ?? HOLE;
      if (json === HOLE) continue;
      const seq = this.pendSeqs[i] ?? 0;
      seqs.push(seq);
      jsons.push(json);
      bytes += json.length;
      this.pendingBytes -= json.length;
      if (json.startsWith(this.progressPrefix)) this.pendProgress--;
      else if (json.startsWith(this.resultPrefix)) this.pendResults--;
      this.hold(seq, json, this.pendOut[i] ?? 0);
    }
    this.compactPending();
    const minID = this.trim();
    const evicted = this.lostChanged ? JSON.stringify(this.lost.copy()) : '';
    this.lostChanged = false;
    return { seqs, jsons, minID, close: this.isClosed && this.head >= this.pendSeqs.length, evicted };
  }

  /** Records an event as stored (the index that the byte and count bounds trim by). */
  private hold(seq: number, json: string, out: number): void {
    this.heldSeqs.push(seq);
    this.heldBytes.push(json.length);
    this.heldTypes.push(typeOf(json));
    this.heldOut.push(out);
    this.heldTotal += json.length;
  }

  /** Drops the oldest stored events past the bounds (never the newest); returns the stream's new MINID. */
  private trim(): number {
    const count = (): number => this.heldSeqs.length - this.heldHead;
    while (count() > 1 && (this.heldTotal > this.o.maxBytes || count() > this.o.maxEntries)) {
      const i = this.heldHead++;
      this.heldTotal -= this.heldBytes[i] ?? 0;
      this.count(this.heldSeqs[i] ?? 0, this.heldTypes[i] ?? 'stdout', this.heldOut[i] ?? 0);
    }
    if (this.heldHead > 1024 && this.heldHead * 2 > this.heldSeqs.length) {
      this.heldSeqs = this.heldSeqs.slice(this.heldHead);
      this.heldBytes = this.heldBytes.slice(this.heldHead);
      this.heldTypes = this.heldTypes.slice(this.heldHead);
      this.heldOut = this.heldOut.slice(this.heldHead);
      this.heldHead = 0;
    }
    return this.heldSeqs[this.heldHead] ?? 0;
  }

  /**
   * Redis is slower than the program: drops waiting events by EventLog's policy until a quarter
   * of the bound is free (so the next appends do not each scan again). The newest always stays.
   */
  private overflow(): void {
    const target = (this.o.maxPendingBytes * 3) / 4;
    const last = this.pendSeqs.length - 1;
    const sweep = (keep: (json: string) => boolean): void => {
      for (let i = this.head; i < last && this.pendingBytes > target; i++) {
        const json = this.pendJsons[i] ?? HOLE;
        if (json === HOLE || keep(json)) continue;
        this.dropPending(i, json);
      }
    };
    // Progress is a state: all but the newest may go; then results; then anything old.
    if (this.pendProgress > 1) {
      let newest = -1;
      for (let i = last; i >= this.head; i--) if (this.pendJsons[i]?.startsWith(this.progressPrefix)) {
        newest = i;
        break;
      }
      for (let i = this.head; i < newest && this.pendingBytes > target; i++) {
        const json = this.pendJsons[i] ?? HOLE;
        if (json.startsWith(this.progressPrefix)) this.dropPending(i, json);
      }
    }
    if (this.pendResults > 0) sweep((json) => !json.startsWith(this.resultPrefix));
    sweep(() => false);
  }

  private dropPending(i: number, json: string): void {
    const type = typeOf(json);
    this.count(this.pendSeqs[i] ?? 0, type, this.pendOut[i] ?? 0);
    if (json.startsWith(this.progressPrefix)) this.pendProgress--;
    else if (json.startsWith(this.resultPrefix)) this.pendResults--;
    this.pendingBytes -= json.length;
    this.pendJsons[i] = HOLE;
  }

  private compactPending(): void {
    if (this.head < 1024 || this.head * 2 < this.pendSeqs.length) return;
    this.pendSeqs = this.pendSeqs.slice(this.head);
    this.pendJsons = this.pendJsons.slice(this.head);
    this.pendOut = this.pendOut.slice(this.head);
    this.head = 0;
  }

  /** Seqs `from`…`to` that appendEntry skipped: dropped before they reached this writer. */
  private countSkipped(from: number, to: number): void {
    this.lost.dropRange(from, to, to - from + 1);
    this.lostChanged = true;
  }

  private count(seq: number, type: EventType, outputBytes: number): void {
    this.lost.drop(seq, type, outputBytes);
    this.lostChanged = true;
  }

  private settle(): void {
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.stored >= w.seq && (!w.closing || this.closeStored)) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  private fail(err: RedisLogError): void {
    if (this.failed) return;
    this.failed = err;
    this.abandon();
    // Nothing more will be sent: the waiting events are released, not kept for ever.
    this.pendSeqs = [];
    this.pendJsons = [];
    this.pendOut = [];
    this.head = 0;
    this.pendingBytes = 0;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.onFailure?.(err);
  }
}

/** What one read of a log returns: its state and the entries from a seq on. */
interface LogRead {
  epoch: string | null;
  last: number;
  closed: boolean;
  evicted: string | null;
  entries: RawEntry[];
}

/** An event, or (`json` null) the end marker `<last seq>-1`. */
interface RawEntry {
  seq: number;
  json: string | null;
}

/** A reader of a log in Redis, from any process. */
export class RedisLogReader<E extends LoggedEvent = ExecutionEvent> implements ReadableLog<E> {
  private known: number;
  private isClosed: boolean;
  private readonly blockMs: number;
  private readonly unavailableMs: number;
  private readonly callTimeoutMs: number;
  /** Mean JSON bytes of the events in the latest read, for the next read's COUNT. */
  private meanBytes = FIRST_GUESS_BYTES;

  private constructor(
    private readonly conn: RedisConnection,
    readonly id: string,
    private readonly keys: LogKeys,
    private readonly epoch: string,
    first: LogRead,
    opts: RedisReaderOptions,
  ) {
    this.known = first.last;
    this.isClosed = first.closed;
    this.blockMs = opts.blockMs ?? 2000;
    this.unavailableMs = opts.unavailableMs ?? 30_000;
    this.callTimeoutMs = Math.min(opts.callTimeoutMs ?? 5000, this.unavailableMs);
  }

  /** A reader of the log `id`; null when Redis holds no such log (never created, expired or lost). */
  static async open<E extends LoggedEvent = ExecutionEvent>(conn: RedisConnection, id: string, opts: RedisReaderOptions = {}): Promise<RedisLogReader<E> | null> {
    const r = await RedisLogReader.openWith<E>(conn, id, opts, false);
    return r.kind === 'open' ? r.log : null;
  }

  /**
   * A reader of the log `id`, or why there is none: `unknown` (404: never created, or expired)
   * or `lost` (the cluster's record `exec:<id>` / `run:<id>` is there but the log is not: Redis
   * lost it; answer `sandbox_lost`). That tells them apart only if whoever makes the record
   * makes it after the log (the worker creates the log before it acknowledges the run).
   * Rejects with `unavailable` when Redis does not answer within the reader's bound.
   */
  static openOrWhy<E extends LoggedEvent = ExecutionEvent>(conn: RedisConnection, id: string, opts: RedisReaderOptions = {}): Promise<OpenedLog<RedisLogReader<E>>> {
    return RedisLogReader.openWith<E>(conn, id, opts, true);
  }

  /** open (`why` false: no second look when missing) and openOrWhy. */
  private static async openWith<E extends LoggedEvent>(conn: RedisConnection, id: string, opts: RedisReaderOptions, why: boolean): Promise<OpenedLog<RedisLogReader<E>>> {
    const keys = conn.logKeys(id);
    const bound = Math.min(opts.callTimeoutMs ?? 5000, opts.unavailableMs ?? 30_000);
    const first = await retrying(bound, conn.reader, () => readLog(conn.reader, keys, 1, 0));
    if (first.epoch !== null) return { kind: 'open', log: new RedisLogReader<E>(conn, id, keys, first.epoch, first, opts) };
    if (!why) return { kind: 'missing', why: 'unknown' };
    const record = await retrying(bound, conn.reader, () => conn.reader.exists(conn.key(id)));
    return { kind: 'missing', why: record === 1 ? 'lost' : 'unknown' };
  }

  /** As of this reader's latest read of Redis. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** As of this reader's latest read of Redis. */
  get lastSeq(): number {
    return this.known;
  }

  async *follow(from: number, signal?: AbortSignal): AsyncGenerator<LogEntry<E['type']>[]> {
    let next = Math.max(1, Math.floor(from));
    /** When the first of the calls failing in a row was sent (null while Redis answers). */
    let downSince: number | null = null;
    const trouble = async (sentAt: number, err: unknown): Promise<void> => {
      downSince ??= sentAt;
      if (Date.now() - downSince >= this.unavailableMs) throw new RedisLogError('unavailable', `Redis did not answer for ${this.unavailableMs} ms reading log ${this.id}: ${String(err)}`);
      await sleep(Math.min(500, 50 + (Date.now() - downSince) / 4), signal);
    };
    /**
     * Read the log's state with the entries (XRANGE in a MULTI) rather than block in XREAD: at
     * first, while replaying, after a BLOCK that timed out (is the log still there?), after an
     * error, and at the end marker. A live follower woken by new entries blocks again at once.
     */
    let readState = true;
    while (!signal?.aborted) {
      const sentAt = Date.now();
      if (readState) {
        let read: LogRead;
        try {
          read = await within(this.callTimeoutMs, this.conn.reader, () => readLog(this.conn.reader, this.keys, next, this.count()));
          downSince = null;
        } catch (err) {
          await trouble(sentAt, err);
          continue;
        }
        if (read.epoch !== this.epoch) {
          // Redis lost the log (or it expired) before we saw its end: say what is missing, then fail.
          if (this.known >= next) yield [gapEntry<E['type']>(next, this.known)];
          throw new RedisLogError('lost', `log ${this.id} is gone from Redis before its end (Redis restarted without persistence, flushed, or the log expired)`);
        }
        this.known = Math.max(this.known, read.last);
        this.isClosed = read.closed;
        this.measure(read.entries);
        const batch = entriesFrom<E['type']>(read.entries, next);
        next = batch.next;
        if (batch.entries.length > 0) {
          yield batch.entries;
          continue;
        }
        if (next <= read.last) {
          // Nothing held from `next` on though the log has it: all trimmed (the newest never is).
          yield [gapEntry<E['type']>(next, read.last)];
          next = read.last + 1;
          continue;
        }
        if (read.closed) return;
        readState = false;
      }
      let got: RawEntry[] | null;
      try {
        got = await this.block(next, signal);
        downSince = null;
      } catch (err) {
        readState = true;
        await trouble(sentAt, err);
        continue;
      }
      if (got === null) {
        // BLOCK timed out: check the log still exists (and closed) before waiting again.
        readState = true;
        continue;
      }
      this.measure(got);
      const batch = entriesFrom<E['type']>(got, next);
      next = batch.next;
      this.known = Math.max(this.known, next - 1);
      if (batch.entries.length > 0) yield batch.entries;
      // The end marker: the state read confirms the end (and any trimmed tail) and returns.
      if (got.some((e) => e.json === null)) readState = true;
    }
  }

  async *scan(onEvicted: (evicted: EvictedEvents) => void): AsyncGenerator<string[]> {
    const read1 = (from: number): Promise<LogRead> => retrying(this.callTimeoutMs, this.conn.reader, () => readLog(this.conn.reader, this.keys, from, this.count()));
    let read = await read1(1);
    if (read.epoch !== this.epoch) throw new RedisLogError('lost', `log ${this.id} is gone from Redis`);
    this.known = Math.max(this.known, read.last);
    this.isClosed = read.closed;
    onEvicted(parseEvicted(read.evicted));
    for (;;) {
      this.measure(read.entries);
      const jsons: string[] = [];
      for (const e of read.entries) if (e.json !== null) jsons.push(e.json);
      if (jsons.length > 0) yield jsons;
      const last = read.entries[read.entries.length - 1];
      if (!last || last.json === null || last.seq >= read.last) return;
      read = await read1(last.seq + 1);
    }
  }

  /** COUNT for the next read: about READ_BYTES of JSON at the recent mean event size, 1…BATCH. */
  private count(): number {
    return Math.max(1, Math.min(BATCH, Math.floor(READ_BYTES / this.meanBytes)));
  }

  private measure(entries: RawEntry[]): void {
    let bytes = 0;
    let n = 0;
    for (const e of entries) {
      if (e.json === null) continue;
      bytes += e.json.length;
      n++;
    }
    if (n > 0) this.meanBytes = Math.max(64, bytes / n);
  }

  /**
   * One XREAD BLOCK from `next` on a lent connection; null on timeout or abort. An abort closes
   * the connection at once when a call is in flight on it; so does an answer later than BLOCK
   * plus callTimeoutMs (a half-open connection), which then rejects.
   */
  private async block(next: number, signal?: AbortSignal): Promise<RawEntry[] | null> {
    let client: Redis;
    try {
      client = await this.conn.blocking.acquire(signal);
    } catch (err) {
      if (signal?.aborted) return null;
      throw err;
    }
    let inFlight = false;
    let closed = false;
    const close = (): void => {
      closed = true;
      forceClose(client);
    };
    const onAbort = (): void => {
      // With no call in flight the connection is healthy: it goes back to the pool.
      if (inFlight) close();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      if (signal?.aborted) return null;
      inFlight = true;
      const reply = await Promise.race([
        client.call('XREAD', 'COUNT', this.count(), 'BLOCK', this.blockMs, 'STREAMS', this.keys.stream, `${next - 1}-0`),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            close();
            reject(new Error(`XREAD BLOCK ${this.blockMs} not answered within ${this.callTimeoutMs} ms more: connection closed`));
          }, this.blockMs + this.callTimeoutMs);
        }),
      ]);
      inFlight = false;
      return parseXRead(reply);
    } catch (err) {
      inFlight = false;
      // A failed call may have left the connection in any state.
      closed = true;
      if (signal?.aborted) return null;
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.conn.blocking.release(client, closed);
    }
  }
}

/** The log's state and up to `count` entries from `from` on, read together (MULTI: no write between them). */
async function readLog(client: Redis, keys: LogKeys, from: number, count: number): Promise<LogRead> {
  const tx = client.multi().hmget(keys.meta, 'epoch', 'last', 'closed', 'evicted');
  if (count > 0) tx.xrange(keys.stream, `${from}-0`, '+', 'COUNT', count);
  const replies = await tx.exec();
  if (!replies) throw new Error('redis transaction aborted');
  const [metaReply, rangeReply] = replies;
  if (!metaReply || metaReply[0]) throw metaReply?.[0] ?? new Error('no reply from redis');
  const meta = metaReply[1];
  if (!Array.isArray(meta)) throw new Error('unexpected HMGET reply');
  if (rangeReply?.[0]) throw rangeReply[0];
  const [epoch, last, closed, evicted] = meta.map((v: unknown) => (typeof v === 'string' ? v : null));
  return {
    epoch: epoch ?? null,
    last: Number(last ?? 0),
    closed: closed === '1',
    evicted: evicted ?? null,
    entries: rangeReply ? parseEntries(rangeReply[1]) : [],
  };
}

/** A batch for a reader at `next`: the entries from there on, with a `gap` before each jump. */
function entriesFrom<T extends string>(raw: RawEntry[], next: number): { entries: LogEntry<T>[]; next: number } {
  const entries: LogEntry<T>[] = [];
  for (const { seq, json } of raw) {
    if (json === null || seq < next) continue;
    if (seq > next) entries.push(gapEntry<T>(next, seq - 1));
    entries.push({ seq, type: typeOf(json) as T, json });
    next = seq + 1;
  }
  return { entries, next };
}

/** XRANGE's reply: `[[id, [field, value, …]], …]`; the id's first part is the seq. */
function parseEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) throw new Error('unexpected stream reply');
  const out: RawEntry[] = [];
  for (const item of reply as unknown[]) {
    if (!Array.isArray(item)) throw new Error('unexpected stream entry');
    const [id, fields] = item as unknown[];
    if (typeof id !== 'string' || !Array.isArray(fields)) throw new Error('unexpected stream entry');
    const dash = id.indexOf('-');
    const seq = Number(id.slice(0, dash));
    if (id.slice(dash + 1) !== '0') {
      out.push({ seq, json: null });
      continue;
    }
    const j = (fields as unknown[]).indexOf('j');
    const json = (fields as unknown[])[j + 1];
    if (j < 0 || typeof json !== 'string') throw new Error(`stream entry ${id} has no event`);
    out.push({ seq, json });
  }
  return out;
}

/** XREAD's reply for one stream: `[[key, entries]]`, or null when BLOCK timed out. */
function parseXRead(reply: unknown): RawEntry[] | null {
  if (reply === null) return null;
  if (!Array.isArray(reply)) throw new Error('unexpected XREAD reply');
  const first = (reply as unknown[])[0];
  if (!Array.isArray(first)) return null;
  return parseEntries((first as unknown[])[1]);
}

/** The `evicted` field the writer keeps, or nothing dropped when absent. */
function parseEvicted(json: string | null): EvictedEvents {
  const none = noneEvicted();
  if (json === null) return none;
  const v: unknown = JSON.parse(json);
  if (typeof v !== 'object' || v === null) return none;
  const r = v as Record<string, unknown>;
  const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const seq = (x: unknown): number | null => (typeof x === 'number' ? x : null);
  const types: EvictedEvents['types'] = {};
  if (typeof r['types'] === 'object' && r['types'] !== null) {
    for (const [k, n] of Object.entries(r['types'] as Record<string, unknown>)) types[k as EventType] = num(n);
  }
  return { events: num(r['events']), from_seq: seq(r['from_seq']), to_seq: seq(r['to_seq']), types, stdout_bytes: num(r['stdout_bytes']), stderr_bytes: num(r['stderr_bytes']) };
}

/**
 * Runs `op` (a call on `client`) until it succeeds, retrying failed attempts (a dropped
 * connection, Redis restarting) with a short backoff for at most `timeoutMs` in all. Each
 * attempt is bounded too (a third of that, at least 1 s): one left hanging on a connection that
 * looks ready means the connection is half-open, so it is replaced (which fails whatever else
 * waited on it: those callers resend) and the next attempt goes out on a new one. A refusal by a
 * script (`SLUICE_…`) is final.
 */
async function retrying<T>(timeoutMs: number, client: Redis, op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const attemptMs = Math.max(1000, timeoutMs / 3);
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    // Checked before the attempt: a bound of 0 would replace a healthy connection.
    if (left <= 0) throw new RedisLogError('unavailable', `Redis did not take the call within ${timeoutMs} ms`);
    try {
      return await within(Math.min(attemptMs, left), client, op);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message.startsWith('SLUICE_EPOCH')) throw new RedisLogError('lost', message.slice('SLUICE_EPOCH '.length));
      if (message.startsWith('SLUICE_ENDED')) throw new RedisLogError('ended', message.slice('SLUICE_ENDED '.length));
      if (message.startsWith('SLUICE_EXISTS')) throw new RedisLogError('exists', message.slice('SLUICE_EXISTS '.length));
      const left = deadline - Date.now();
      if (left <= 0) throw new RedisLogError('unavailable', `Redis did not take the call within ${timeoutMs} ms: ${message}`);
      await sleep(Math.min(left, 25 * 2 ** Math.min(attempt, 4)));
    }
  }
}

/** UTF-8 bytes of a stored stdout / stderr event's `content` (for `evicted`). */
function outputBytes(json: string): number {
  const content = (JSON.parse(json) as { content?: unknown }).content;
  return typeof content === 'string' ? Buffer.byteLength(content) : 0;
}

function interleave(seqs: number[], jsons: string[]): (string | number)[] {
  const out: (string | number)[] = [];
  for (let i = 0; i < seqs.length; i++) out.push(seqs[i] ?? 0, jsons[i] ?? '');
  return out;
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
