/**
 * Streams an execution's log to one HTTP response as SSE or NDJSON, at the client's pace:
 * every write honours `write() === false` by waiting for `'drain'` (an unread socket must not
 * grow the server's memory), and a client that goes away aborts the reader at once.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SSE_EVENT_END, encodeEventNDJSON, encodeEventSSE, encodeEventSSEHead, encodeSSEComment } from '@sluice/protocol';
import type { LogEntry, LoggedEvent, ReadableLog } from '../execution/readable-log.js';
import type { StreamFormat } from './negotiate.js';

export interface StreamOptions {
  format: StreamFormat;
  /** First seq to send (inclusive). */
  from: number;
  /** Seconds between SSE `: ping` comments. */
  heartbeatSec: number;
  /** Extra response headers (the execution id, its URL). */
  headers: Record<string, string>;
  /** Aborts the stream from the server's side (shutdown). */
  signal?: AbortSignal;
}

/** How a stream ended: `complete` when the client got everything up to the log's end. */
export type StreamOutcome = 'complete' | 'disconnected';

const CONTENT_TYPES: Record<StreamFormat, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/**
 * An event whose JSON is at least this long is written as it is, between its frame's pieces,
 * instead of being copied into the batch's text: a batch of long output events made one string
 * of up to 32 MiB that Node flattened (for the chunk's length) into fresh memory every time (a
 * replay of 200 MiB: a mapping per batch and ~54 000 page faults, ~12 µs each on this VM).
 */
const OWN_PIECE_CHARS = 8 * 1024;

/** Writes the response head and then the log, following it live until it closes. */
export function writeEvents<E extends LoggedEvent>(res: ServerResponse, log: ReadableLog<E>, opts: StreamOptions): Promise<StreamOutcome> {
  const sse = opts.format === 'sse';
  return streamLog(res, log, {
    contentType: CONTENT_TYPES[opts.format],
    sse,
    from: opts.from,
    heartbeatSec: opts.heartbeatSec,
    headers: opts.headers,
    ...(opts.signal ? { signal: opts.signal } : {}),
    encode: (batch) => {
      let pieces: string[] | null = null;
      let text = '';
      for (const e of batch) {
        if (e.json.length < OWN_PIECE_CHARS) {
          text += sse ? encodeEventSSE(e.seq, e.type, e.json) : encodeEventNDJSON(e.json);
          continue;
        }
        (pieces ??= []).push(sse ? text + encodeEventSSEHead(e.seq, e.type) : text, e.json);
        text = sse ? SSE_EVENT_END : '\n';
      }
      if (!pieces) return text;
      pieces.push(text);
      return pieces;
    },
  });
}

/** How `streamLog` turns a log into a response body. */
export interface LogStreamOptions<T extends string> {
  contentType: string;
  /** SSE: the stream opens with a `: connected` comment and a retry hint, and gets `: ping` heartbeats. */
  sse: boolean;
  /** First seq read from the log. */
  from: number;
  heartbeatSec: number;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** The bytes for one batch of entries (may be empty), as one string or in pieces written in turn. */
  encode(batch: LogEntry<T>[]): string | readonly string[];
  /** The bytes after the log's last event, when the client got everything. */
  tail?(): string;
}

/**
 * The one writer of a log to an HTTP response (executions' and agent runs' SSE and NDJSON, and
 * AG-UI's SSE): the head, heartbeats, the log followed live at the client's pace, the end.
 */
export async function streamLog<E extends LoggedEvent>(res: ServerResponse, log: ReadableLog<E>, opts: LogStreamOptions<E['type']>): Promise<StreamOutcome> {
  const ac = new AbortController();
  const onClose = (): void => ac.abort();
  res.once('close', onClose);
  const onServerAbort = (): void => ac.abort();
  opts.signal?.addEventListener('abort', onServerAbort, { once: true });

  // Small events must not wait for the peer's delayed ACK behind an unacknowledged one (Nagle).
  res.socket?.setNoDelay(true);
  res.writeHead(200, {
    'Content-Type': opts.contentType,
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
    Connection: 'keep-alive',
    ...opts.headers,
  });
  // The head goes out with the first batch of events when the log has one now (a new run's
  // `start`): one write instead of two. Held at most until the end of this turn (setImmediate),
  // so a stream with nothing to send yet is still seen open at once.
  const socket = res.socket;
  socket?.cork();
  let held = socket !== null;
  const release = (): void => {
    if (!held) return;
    held = false;
    clearImmediate(releaseLater);
    socket?.uncork();
  };
  const releaseLater = setImmediate(release);
  // A comment first (a proxy or a client sees the stream is open before any event), and the
  // retry hint: EventSource clients come back quickly after a drop.
  if (opts.sse) res.write(': connected\nretry: 1000\n\n');
  res.flushHeaders();

  let heartbeat: NodeJS.Timeout | null = null;
  if (opts.sse && opts.heartbeatSec > 0) {
    const ping = encodeSSEComment('ping');
    heartbeat = setInterval(() => {
      // A client that is not reading does not need more bytes queued for it.
      if (!res.writableNeedDrain) res.write(ping);
    }, opts.heartbeatSec * 1000);
  }

  try {
    for await (const batch of log.follow(opts.from, ac.signal)) {
      const room = writeBatch(res, socket, opts.encode(batch));
      release();
      if (!room) await drained(res, ac.signal);
      if (ac.signal.aborted) break;
    }
    if (ac.signal.aborted) return 'disconnected';
    res.end(opts.tail?.() ?? '');
    return 'complete';
  } catch (err) {
    // The log could not be read further (a Redis that is gone): what was written is delivered and
    // the stream ends without its last event, which tells the client "unknown: reconnect".
    if (!res.writableEnded && !ac.signal.aborted) res.end();
    throw err;
  } finally {
    release();
    if (heartbeat) clearInterval(heartbeat);
    res.off('close', onClose);
    opts.signal?.removeEventListener('abort', onServerAbort);
    if (ac.signal.aborted && !res.writableEnded) res.destroy();
  }
}

/** Writes a batch's bytes; false when the socket asks the writer to wait for 'drain'. */
function writeBatch(res: ServerResponse, socket: Socket | null, bytes: string | readonly string[]): boolean {
  if (typeof bytes === 'string') return bytes === '' || res.write(bytes);
  // Pieces go to the socket together (one writev), each its own chunk of the response.
  socket?.cork();
  let room = true;
  for (const piece of bytes) if (piece !== '') room = res.write(piece) && room;
  socket?.uncork();
  return room;
}

function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
