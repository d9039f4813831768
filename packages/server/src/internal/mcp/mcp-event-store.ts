/**
 * The MCP transport's EventStore (resumability: a client that lost an SSE stream comes back
 * with `Last-Event-ID` and gets what it missed), on Sluice's own event logs: one bounded
 * EventLog per MCP stream, so a stream's messages get seq 1, 2, 3… and the event id is
 * `<streamId>:<seq>`.
 *
 * Bounds: each stream's log holds at most `maxStreamBytes` (the log's overflow policy, with
 * progress notifications as its `progress` type and log messages as its `result` type: a
 * flood drops the oldest progress notifications first, whose text the log messages repeat,
 * then the oldest log messages, then the oldest of anything; the newest message stays); every
 * log also counts in the server's log budget (SLUICE_LOG_BUDGET) through `track`, and is
 * closed (finished, for the budget) once the stream's response is stored. A session holds the
 * logs of at most `maxStreams` streams: past that, the least recently used finished stream is
 * dropped, and only if none is finished the least recently used one. A dropped stream (by that
 * bound or by the budget) is remembered by its last seq (`maxDropped` of them): a later
 * message of it continues the numbering in a new log, and a resume gets a gap notice, never
 * ids that repeat or a silent loss. Everything is released when the MCP session ends.
 *
 * A resume asking for messages no longer held gets what is held, and for each run of missing
 * ones a `notifications/message` warning (logger `sluice`) saying which seqs were lost, with
 * the event id of the last of them, so the client knows it lost some and resumes past them.
 *
 * There is deliberately no `getStreamIdForEventId`: with it the SDK refuses (409) a resume
 * while it still holds the stream's old connection, which after a half-open cut (the client's
 * socket gone, the server's not) it does until TCP gives up; without it, the resume replaces it.
 */
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isJSONRPCErrorResponse, isJSONRPCResultResponse, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { GapEvent } from '@sluice/protocol';
import { EventLog, type SpillableLog } from '../execution/event-log.js';

/** How a message is kept: its kind decides what the overflow policy drops first. */
export type McpStreamEvent =
  | { type: 'message' | 'progress' | 'log' | 'priming'; seq: number; ts: number; message: JSONRPCMessage | null }
  | GapEvent;

export interface McpEventStoreOptions {
  /** Memory of one stream's log, bytes. */
  maxStreamBytes: number;
  /** Streams whose logs a session holds. */
  maxStreams: number;
  /** Dropped streams whose last seq is remembered (default 1024). */
  maxDropped?: number;
  /** Counts a log in the server's budget; `onRelease` runs when the budget forgets it. */
  track?(log: SpillableLog & EventLog<McpStreamEvent>, onRelease: () => void): void;
}

/** What a resume of an event id would get (see McpEventStore.resumeOf). */
export type McpResume =
  /** No such stream in this session (never was, or forgotten): nothing to replay. */
  | { kind: 'unknown' }
  /** The stream's response was stored: a replay is all it will ever have. */
  | { kind: 'finished' }
  /** The stream is still in use (a request running, or the GET stream). */
  | { kind: 'open' };

interface Stream {
  /** null once dropped: only its numbering is remembered. */
  log: EventLog<McpStreamEvent> | null;
  /** Event seq = base + the log's seq (a log that replaced a dropped one continues its numbering). */
  base: number;
  /** Seq of the newest event id given out. */
  lastSeq: number;
  /** Its response (the last, for a batch: see storeEvent) is stored. */
  finished: boolean;
}

export class McpEventStore implements EventStore {
  /** Least recently used first (a use moves a stream to the end). */
  private readonly streams = new Map<StreamId, Stream>();
  private held = 0;
  /** Streams being replayed: storing waits until the resumed stream is registered (see storeEvent). */
  private readonly replaying = new Map<StreamId, Promise<void>>();
  private closed = false;

  constructor(private readonly opts: McpEventStoreOptions) {}

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // The transport writes a message to the stream registered for it once this resolves. While a
    // replay runs, the resumed stream is not registered yet: a message stored after the replay
    // read the log, but written before the registration, would reach neither. So wait.
    const replay = this.replaying.get(streamId);
    if (replay) await replay;
    const s = this.use(streamId);
    const log = this.logOf(streamId, s);
    const entry = log.append({ type: kindOf(message), message: isEmpty(message) ? null : message });
    s.lastSeq = s.base + entry.seq;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      // Finished: the budget may now spill or forget it, and this session drops it first. (A
      // batch's later responses continue in a new log: a resume is told the earlier part is gone.)
      s.finished = true;
      log.close();
    }
    return `${streamId}:${s.lastSeq}`;
  }

  /** What a resume from `lastEventId` would get. */
  resumeOf(lastEventId: EventId): McpResume {
    const id = parseEventID(lastEventId);
    const s = id ? this.streams.get(id.streamId) : undefined;
    if (!id || !s) return { kind: 'unknown' };
    return s.finished ? { kind: 'finished' } : { kind: 'open' };
  }

  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const id = parseEventID(lastEventId);
    const s = id ? this.streams.get(id.streamId) : undefined;
    if (!id || !s) throw new Error(`Last-Event-ID ${JSON.stringify(lastEventId)}: no such stream in this session`);
    const { streamId } = id;
    this.use(streamId);
    let release!: () => void;
    this.replaying.set(streamId, new Promise<void>((r) => (release = r)));
    try {
      const { log, base } = s;
      // What came before the held log (a dropped stream's, or its predecessor's) is lost.
      const heldFrom = log ? base + 1 : s.lastSeq + 1;
      if (id.seq + 1 < heldFrom) await send(`${streamId}:${heldFrom - 1}`, gapNotice(id.seq + 1, heldFrom - 1));
      if (log && base + log.lastSeq > id.seq) {
        // follow() waits for new events at the end: stop once caught up (a running stream's log is open).
        for await (const batch of log.follow(Math.max(1, id.seq - base + 1))) {
          for (const entry of batch) {
            const ev = JSON.parse(entry.json) as McpStreamEvent;
            if (ev.type === 'gap') await send(`${streamId}:${base + ev.seq}`, gapNotice(base + ev.from_seq, base + ev.to_seq));
            else if (ev.message !== null) await send(`${streamId}:${base + ev.seq}`, ev.message);
          }
          const last = batch[batch.length - 1];
          if (last === undefined || last.seq >= log.lastSeq) break;
        }
      }
      return streamId;
    } finally {
      // The transport registers the resumed stream in the continuation of this call: one macrotask later it has.
      setImmediate(() => {
        this.replaying.delete(streamId);
        release();
      });
    }
  }

  /** Releases every stream's log (the MCP session ended). */
  close(): void {
    this.closed = true;
    for (const s of this.streams.values()) s.log?.release();
    this.streams.clear();
    this.held = 0;
  }

  /** Streams whose logs are held (for tests). */
  get streamCount(): number {
    return this.held;
  }

  /** The stream's record, created if new, moved to the most recently used end. */
  private use(streamId: StreamId): Stream {
    const s = this.streams.get(streamId) ?? { log: null, base: 0, lastSeq: 0, finished: false };
    this.streams.delete(streamId);
    this.streams.set(streamId, s);
    return s;
  }

  /** The log to append to: the stream's, or a new one (continuing a dropped or finished one's numbering). */
  private logOf(streamId: StreamId, s: Stream): EventLog<McpStreamEvent> {
    if (s.log && !s.log.closed) return s.log;
    if (this.closed) throw new Error('the MCP session has ended');
    if (s.log) this.drop(s);
    const log = new EventLog<McpStreamEvent>(this.opts.maxStreamBytes, { progress: 'progress', result: 'log' });
    s.log = log;
    s.base = s.lastSeq;
    s.finished = false;
    this.held++;
    this.opts.track?.(log, () => {
      // The budget forgot it (a finished log, the oldest first): remember its numbering only.
      if (s.log === log && this.streams.get(streamId) === s) this.drop(s, false);
    });
    this.evict(s);
    return log;
  }

  /** Brings the held logs back to `maxStreams`: finished streams first, least recently used first. */
  private evict(keep: Stream): void {
    for (const finishedOnly of [true, false]) {
      for (const s of this.streams.values()) {
        if (this.held <= this.opts.maxStreams) break;
        if (s !== keep && s.log && (s.finished || !finishedOnly)) this.drop(s);
      }
    }
    // Dropped streams are remembered by their numbering only, and only so many of them.
    let dropped = 0;
    for (const s of this.streams.values()) if (!s.log) dropped++;
    for (const [id, s] of this.streams) {
      if (dropped <= (this.opts.maxDropped ?? 1024)) break;
      if (!s.log) {
        this.streams.delete(id);
        dropped--;
      }
    }
  }

  /** Forgets a stream's log, keeping its numbering; `release` unless the budget already released it. */
  private drop(s: Stream, release = true): void {
    const log = s.log;
    if (!log) return;
    s.log = null;
    this.held--;
    if (release) log.release();
  }
}

/** `<streamId>:<seq>`, or null. */
function parseEventID(eventId: string): { streamId: string; seq: number } | null {
  const colon = eventId.lastIndexOf(':');
  if (colon <= 0) return null;
  const seq = Number(eventId.slice(colon + 1));
  if (!Number.isSafeInteger(seq) || seq < 0) return null;
  return { streamId: eventId.slice(0, colon), seq };
}

function kindOf(message: JSONRPCMessage): 'message' | 'progress' | 'log' | 'priming' {
  if (isEmpty(message)) return 'priming';
  if ('method' in message && !('id' in message)) {
    if (message.method === 'notifications/progress') return 'progress';
    if (message.method === 'notifications/message') return 'log';
  }
  return 'message';
}

/** The transport stores `{}` for a stream's priming event: nothing to replay. */
function isEmpty(message: JSONRPCMessage): boolean {
  return Object.keys(message).length === 0;
}

/** What a resumed stream gets in place of messages that are no longer held. */
function gapNotice(fromSeq: number, toSeq: number): JSONRPCMessage {
  const n = toSeq - fromSeq + 1;
  return {
    jsonrpc: '2.0',
    method: 'notifications/message',
    params: {
      level: 'warning',
      logger: 'sluice',
      data: `${n} message${n === 1 ? '' : 's'} of this stream (events ${fromSeq}-${toSeq}) were dropped from its bounded log before this resume and cannot be replayed`,
    },
  };
}
