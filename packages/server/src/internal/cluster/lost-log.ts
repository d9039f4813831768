/**
 * An execution's Redis log as an API node serves it: when Redis lost the log (restarted without
 * its data; docs/scale-out.md), a follower does not just stop. After the `gap` the reader gives
 * for the events it knew of, the stream gets an `error` (SANDBOX_UNAVAILABLE: the log is gone)
 * and a `done` with `reason: "sandbox_lost"`: the worker fences itself off when Redis loses its
 * lease (it kills the execution's processes), so the execution did end, and nothing of it can be
 * read any more. These two events exist only on this stream (there is no log left to store
 * them in); their seqs follow the last one the client got. A fold (scan: the buffered answer,
 * GET /api/executions/{id}) ends with the same two. Every other failure (Redis
 * unreachable) is thrown as before: the stream then ends without `done`, "unknown: reconnect".
 */
import { formatDuration, type ExecutionEvent } from '@sluice/protocol';
import type { EvictedEvents } from '@sluice/protocol';
import type { LogEntry, ReadableLog } from '../execution/readable-log.js';
import { RedisLogError } from '../redis/redis-log.js';

export class EndsWhenLost implements ReadableLog<ExecutionEvent> {
  constructor(private readonly log: ReadableLog<ExecutionEvent>) {}

  get closed(): boolean {
    return this.log.closed;
  }

  get lastSeq(): number {
    return this.log.lastSeq;
  }

  async *follow(from: number, signal?: AbortSignal): AsyncGenerator<LogEntry<ExecutionEvent['type']>[]> {
    let next = Math.max(1, Math.floor(from));
    let startedAt: number | null = null;
    try {
      for await (const batch of this.log.follow(from, signal)) {
        for (const e of batch) {
          next = e.seq + 1;
          if (e.type === 'start') startedAt = (JSON.parse(e.json) as { ts: number }).ts;
        }
        yield batch;
      }
    } catch (err) {
      if (!(err instanceof RedisLogError) || err.reason !== 'lost') throw err;
      yield lostEnding(next, startedAt, err.message);
    }
  }

  /** The held events; when Redis lost the log, the same `error` and `done` as follow() ends with, so a buffered answer says what a stream says. */
  async *scan(onEvicted: (evicted: EvictedEvents) => void): AsyncGenerator<string[]> {
    let next = 1;
    let startedAt: number | null = null;
    try {
      for await (const held of this.log.scan(onEvicted)) {
        for (const json of held) {
          const e = JSON.parse(json) as { seq: number; type: string; ts: number };
          next = e.seq + 1;
          if (e.type === 'start') startedAt = e.ts;
        }
        yield held;
      }
    } catch (err) {
      if (!(err instanceof RedisLogError) || err.reason !== 'lost') throw err;
      yield lostEnding(Math.max(next, this.log.lastSeq + 1), startedAt, err.message).map((e) => e.json);
    }
  }
}

/** The `error` and `done` that end a stream whose log Redis lost, from seq `next`. */
export function lostEnding(next: number, startedAt: number | null, why: string): LogEntry<ExecutionEvent['type']>[] {
  const now = Date.now();
  const ms = startedAt === null ? 0 : Math.max(0, now - startedAt);
  const error: ExecutionEvent = {
    type: 'error',
    seq: next,
    ts: now,
    error: `the execution's event log was lost (${why}); what it printed after the events above cannot be read`,
    code: 'SANDBOX_UNAVAILABLE',
  };
  const done: ExecutionEvent = { type: 'done', seq: next + 1, ts: now, exit_code: null, reason: 'sandbox_lost', duration: formatDuration(ms), duration_ms: ms };
  return [
    { seq: error.seq, type: error.type, json: JSON.stringify(error) },
    { seq: done.seq, type: done.type, json: JSON.stringify(done) },
  ];
}
