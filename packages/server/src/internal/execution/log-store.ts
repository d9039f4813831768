/**
 * Where a process keeps its logs: the seam between the code that writes and reads logs and
 * where they live. MemoryLogStore (EventLog: memory, then disk) is the one-process store;
 * RedisLogStore (redis/redis-log-store.ts) is scale-out's, for when SLUICE_REDIS_URL is set.
 * The server does not go through either yet (executions and agent runs make their EventLog
 * themselves); the step that adds workers routes them through a LogStore.
 */
import type { ExecutionEvent } from '@sluice/protocol';
import { EventLog, type ChannelTypes, type NewEvent } from './event-log.js';
import type { LogEntry, LoggedEvent, ReadableLog } from './readable-log.js';

/** How a new log is bounded. */
export interface NewLogOptions {
  /** Memory (EventLog) or JSON bytes (Redis) the log holds; past it the oldest events go (see each store). */
  maxBytes: number;
  /** The types the overflow policy drops first (an execution's `progress` and `result` by default). */
  channel?: ChannelTypes;
  /**
   * Told once when the log cannot be written any more (a store that writes elsewhere: Redis
   * lost the log, did not answer in time, or a reaper ended it); its later appends throw. The
   * memory store never fails.
   */
  onFailure?: (err: Error) => void;
}

/** Why a store holds no log of an id: `unknown` (never made, or expired: 404), `lost` (known, but its log is gone: `sandbox_lost`). */
export type MissingLogReason = 'unknown' | 'lost';

/** What `LogStore.openOrWhy` found. */
export type OpenedLog<R> = { kind: 'open'; log: R } | { kind: 'missing'; why: MissingLogReason };

/** A log as its one writer sees it. */
export interface WritableLog<E extends LoggedEvent> {
  /** Appends an event, assigning `seq` and `ts`; returns it as readers will get it. */
  append(event: NewEvent<E>): LogEntry<E['type']>;
  /** Marks the log complete; a store that writes elsewhere resolves once that is stored, and rejects when it cannot be. */
  close(): void | Promise<void>;
  readonly lastSeq: number;
  readonly closed: boolean;
}

/** The logs of executions (`exec:<id>`) and agent runs (`run:<id>`). */
export interface LogStore {
  /** A new log for this process to write; rejects when the store cannot take it (or `id` exists). */
  create<E extends LoggedEvent = ExecutionEvent>(id: string, opts: NewLogOptions): Promise<WritableLog<E>>;
  /** A reader of the log `id`, whichever process writes it; null when the store does not hold it. */
  open<E extends LoggedEvent = ExecutionEvent>(id: string): Promise<ReadableLog<E> | null>;
  /** As open, but says why there is no log: never made / expired, or lost. */
  openOrWhy<E extends LoggedEvent = ExecutionEvent>(id: string): Promise<OpenedLog<ReadableLog<E>>>;
  close(): Promise<void>;
}

/**
 * One process: each log is an EventLog, which is its own reader. The store holds logs weakly:
 * whoever made one (its execution) decides how long it lives, as today.
 */
export class MemoryLogStore implements LogStore {
  private readonly logs = new Map<string, WeakRef<EventLog<LoggedEvent>>>();
  private readonly forget = new FinalizationRegistry<string>((id) => {
    if (this.logs.get(id)?.deref() === undefined) this.logs.delete(id);
  });

  async create<E extends LoggedEvent = ExecutionEvent>(id: string, opts: NewLogOptions): Promise<EventLog<E>> {
    if (this.logs.get(id)?.deref()) throw new Error(`log ${id} exists`);
    const log = new EventLog<E>(opts.maxBytes, opts.channel);
    // The id names the log's union: whoever opens `exec:…` reads an execution's events.
    const any = log as unknown as EventLog<LoggedEvent>;
    this.logs.set(id, new WeakRef(any));
    this.forget.register(any, id);
    return log;
  }

  async open<E extends LoggedEvent = ExecutionEvent>(id: string): Promise<EventLog<E> | null> {
    // As in create: the id names the union.
    return (this.logs.get(id)?.deref() as unknown as EventLog<E> | undefined) ?? null;
  }

  async openOrWhy<E extends LoggedEvent = ExecutionEvent>(id: string): Promise<OpenedLog<EventLog<E>>> {
    const log = await this.open<E>(id);
    // One process: a log it does not hold is one it never made (or forgot).
    return log ? { kind: 'open', log } : { kind: 'missing', why: 'unknown' };
  }

  async close(): Promise<void> {
    this.logs.clear();
  }
}
