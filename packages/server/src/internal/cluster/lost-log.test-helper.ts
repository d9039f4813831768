/** Logs for the unit tests of lost-log.ts: a Redis log as seen when Redis lost it mid-read. */
import type { EvictedEvents } from '@sluice/protocol';
import type { LoggedEvent, ReadableLog } from '../execution/readable-log.js';

/** A log whose fold (scan) yields `held`, then fails with `err` (a Redis log that was lost: RedisLogError `lost`). */
export function lostOnScan<E extends LoggedEvent>(held: string[], err: Error): ReadableLog<E> {
  return {
    closed: false,
    lastSeq: held.length,
    async *follow() {
      yield [];
    },
    async *scan(_onEvicted: (e: EvictedEvents) => void) {
      yield held;
      throw err;
    },
  };
}
