/**
 * What the transports (SSE, NDJSON, WebSocket, AG-UI, the buffered fold) read of a log, and
 * nothing of where it lives: EventLog (memory and disk, one process) and RedisLogReader
 * (redis/redis-log.ts, any process) both implement it.
 */
import type { EventType, EvictedEvents, ExecutionEvent, GapEvent } from '@sluice/protocol';

/** What every log's events have (an execution's and an agent run's share these rules). */
export interface LoggedEvent {
  type: string;
  seq: number;
  ts: number;
}

/** One event as a reader gets it. */
export interface LogEntry<T extends string = EventType> {
  readonly seq: number;
  readonly type: T;
  /** The event as JSON, exactly what goes on the wire. */
  readonly json: string;
}

/** A log as its readers see it; `E` is the union of its events. */
export interface ReadableLog<E extends LoggedEvent = ExecutionEvent> {
  /** True once the log's last event is in it (as far as this reader knows: a Redis reader learns it when it reads). */
  readonly closed: boolean;
  /** seq of the newest event (as far as this reader knows), 0 when empty. */
  readonly lastSeq: number;
  /**
   * Reads from `from` (inclusive) to the end, waiting for new events until the log closes or
   * `signal` aborts. Yields batches in seq order, each event once; a `gap` entry stands for each
   * run of events no longer held. Throws when the log cannot be read any more (a Redis that lost it).
   */
  follow(from: number, signal?: AbortSignal): AsyncGenerator<LogEntry<E['type']>[]>;
  /**
   * Every held event's JSON, oldest first, in batches; `onEvicted` gets what was dropped, taken
   * at the same moment as the first batch, before it.
   */
  scan(onEvicted: (evicted: EvictedEvents) => void): AsyncGenerator<string[]>;
}

/** The event type leading a stored event's JSON (`{"type":"…"`). */
export function typeOf(json: string): EventType {
  return json.slice(9, json.indexOf('"', 9)) as EventType;
}

/** An event's seq from its JSON, which always begins `{"type":"…","seq":N` (see event-log.ts), without parsing all of it. */
export function seqOf(json: string): number {
  const at = json.indexOf('"seq":', 9) + 6;
  return Number.parseInt(json.slice(at, at + 20), 10);
}

/** The entry a reader gets for the missing run of seqs `fromSeq`…`toSeq`; its seq is `toSeq`. */
export function gapEntry<T extends string>(fromSeq: number, toSeq: number): LogEntry<T> {
  const ev: GapEvent = { type: 'gap', seq: toSeq, ts: Date.now(), from_seq: fromSeq, to_seq: toSeq };
  // Every log's union has this variant (see EventLog).
  return { seq: toSeq, type: 'gap' as T, json: JSON.stringify(ev) };
}
