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
 * log also counts in the server's log budget (SLUICE_LOG_BUDGET) through `track`. A session
 * keeps its newest `maxStreams` streams; everything is released when the MCP session ends.
 *
 * A resume asking for messages no longer held gets what is held, and for each run of missing
 * ones a `notifications/message` warning (logger `sluice`) saying which seqs were lost, with
 * the event id of the last of them, so the client knows it lost some and resumes past them.
 */
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { GapEvent } from '@sluice/protocol';
import { EventLog, type SpillableLog } from '../execution/event-log.js';

/** How a message is kept: its kind decides what the overflow policy drops first. */
export type McpStreamEvent =
  | { type: 'message' | 'progress' | 'log' | 'priming'; seq: number; ts: number; message: JSONRPCMessage | null }
  | GapEvent;

export interface McpEventStoreOptions {
  /** Memory of one stream's log, bytes. */
  maxStreamBytes: number;
  /** Streams kept per session; the oldest goes first. */
  maxStreams: number;
  /** Counts a log in the server's budget; `onRelease` runs when the budget forgets it. */
  track?(log: SpillableLog & EventLog<McpStreamEvent>, onRelease: () => void): void;
}

export class McpEventStore implements EventStore {
  private readonly streams = new Map<StreamId, EventLog<McpStreamEvent>>();
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
    const log = this.logOf(streamId);
    const entry = log.append({ type: kindOf(message), message: isEmpty(message) ? null : message });
    return `${streamId}:${entry.seq}`;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    const id = parseEventID(eventId);
    return id && this.streams.has(id.streamId) ? id.streamId : undefined;
  }

  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const id = parseEventID(lastEventId);
    const log = id ? this.streams.get(id.streamId) : undefined;
    if (!id || !log) throw new Error(`Last-Event-ID ${JSON.stringify(lastEventId)}: no such stream in this session`);
    const { streamId } = id;
    let release!: () => void;
    this.replaying.set(streamId, new Promise<void>((r) => (release = r)));
    try {
      if (id.seq < log.lastSeq) {
        // follow() waits for new events at the end: stop once caught up (the log never closes).
        for await (const batch of log.follow(id.seq + 1)) {
          for (const entry of batch) {
            const ev = JSON.parse(entry.json) as McpStreamEvent;
            if (ev.type === 'gap') await send(`${streamId}:${ev.seq}`, gapNotice(ev.from_seq, ev.to_seq));
            else if (ev.message !== null) await send(`${streamId}:${ev.seq}`, ev.message);
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
    for (const log of this.streams.values()) log.release();
    this.streams.clear();
  }

  /** Streams held (for tests). */
  get streamCount(): number {
    return this.streams.size;
  }

  private logOf(streamId: StreamId): EventLog<McpStreamEvent> {
    const existing = this.streams.get(streamId);
    if (existing) return existing;
    if (this.closed) throw new Error('the MCP session has ended');
    const log = new EventLog<McpStreamEvent>(this.opts.maxStreamBytes, { progress: 'progress', result: 'log' });
    this.streams.set(streamId, log);
    this.opts.track?.(log, () => {
      if (this.streams.get(streamId) === log) this.streams.delete(streamId);
    });
    // The oldest streams go first (Map keeps insertion order).
    for (const [oldID, old] of this.streams) {
      if (this.streams.size <= this.opts.maxStreams) break;
      this.streams.delete(oldID);
      old.release();
    }
    return log;
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

/** What a resumed stream gets in place of messages its bounded log dropped. */
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
