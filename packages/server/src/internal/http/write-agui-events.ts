/**
 * Streams an agent run's log to one HTTP response as AG-UI events over SSE (docs/ag-ui.md):
 * `data: {json}` per event as @ag-ui/encoder frames them, plus `id: {seq}` on the last AG-UI
 * event made from each Sluice event, so `Last-Event-ID` names the last Sluice event a client got
 * whole. At the client's pace: `write() === false` waits for `'drain'`; a client that goes away
 * aborts the reader at once.
 */
import type { ServerResponse } from 'node:http';
import { encodeSSE, encodeSSEComment, type AgentEvent } from '@sluice/protocol';
import type { AGUIRunIDs } from '../agent/ag-ui/agui-mapper.js';
import { AGUIStream } from '../agent/ag-ui/agui-stream.js';
import type { EventLog } from '../execution/event-log.js';

export interface AGUIStreamOptions {
  /** First Sluice seq the client wants (1 for all; a resume re-opens what the earlier ones left open). */
  from: number;
  /** Seconds between `: ping` comments. */
  heartbeatSec: number;
  /** Extra response headers (the run id, its URL). */
  headers: Record<string, string>;
  /** Aborts the stream from the server's side (shutdown). */
  signal?: AbortSignal;
}

/** How a stream ended: `complete` when the client got everything up to the log's end. */
export type AGUIStreamOutcome = 'complete' | 'disconnected';

/** Writes the response head, then the run's AG-UI events, following the log live until it closes. */
export async function writeAGUIEvents(res: ServerResponse, log: EventLog<AgentEvent>, ids: AGUIRunIDs, opts: AGUIStreamOptions): Promise<AGUIStreamOutcome> {
  const ac = new AbortController();
  const onClose = (): void => ac.abort();
  res.once('close', onClose);
  const onServerAbort = (): void => ac.abort();
  opts.signal?.addEventListener('abort', onServerAbort, { once: true });

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
    Connection: 'keep-alive',
    ...opts.headers,
  });
  // AG-UI's SSE reader skips frames without `data:`, so the comment and retry hint are safe for it.
  res.write(': connected\nretry: 1000\n\n');
  res.flushHeaders();

  let heartbeat: NodeJS.Timeout | null = null;
  if (opts.heartbeatSec > 0) {
    const ping = encodeSSEComment('ping');
    heartbeat = setInterval(() => {
      // A client that is not reading does not need more bytes queued for it.
      if (!res.writableNeedDrain) res.write(ping);
    }, opts.heartbeatSec * 1000);
  }

  const stream = new AGUIStream(ids, opts.from);
  try {
    // From seq 1 even when resuming: the events before `from` tell the stream what is open.
    for await (const batch of log.follow(1, ac.signal)) {
      let text = '';
      for (const entry of batch) {
        // The log's own serialisation of an AgentEvent (EventLog<AgentEvent>); no outside input.
        const event = JSON.parse(entry.json) as AgentEvent;
        const out = stream.push(event);
        out.forEach((ev, i) => {
          const last = i === out.length - 1 && entry.seq >= opts.from;
          text += encodeSSE(last ? { id: entry.seq, data: JSON.stringify(ev) } : { data: JSON.stringify(ev) });
        });
      }
      if (text !== '' && !res.write(text)) await drained(res, ac.signal);
      if (ac.signal.aborted) break;
    }
    if (ac.signal.aborted) return 'disconnected';
    let tail = '';
    for (const ev of stream.end()) tail += encodeSSE({ data: JSON.stringify(ev) });
    res.end(tail);
    return 'complete';
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    res.off('close', onClose);
    opts.signal?.removeEventListener('abort', onServerAbort);
    if (ac.signal.aborted && !res.writableEnded) res.destroy();
  }
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
