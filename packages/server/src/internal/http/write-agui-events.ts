/**
 * Streams an agent run's log to one HTTP response as AG-UI events over SSE (docs/ag-ui.md):
 * `data: {json}` per event as @ag-ui/encoder frames them, plus `id: {seq}` on the last AG-UI
 * event made from each Sluice event, so `Last-Event-ID` names the last Sluice event a client got
 * whole. At the client's pace: `write() === false` waits for `'drain'`; a client that goes away
 * aborts the reader at once.
 */
import type { ServerResponse } from 'node:http';
import { encodeSSE, type AgentEvent } from '@sluice/protocol';
import type { AGUIRunIDs } from '../agent/ag-ui/agui-mapper.js';
import { AGUIStream } from '../agent/ag-ui/agui-stream.js';
import type { ReadableLog } from '../execution/readable-log.js';
import { streamLog, type StreamOutcome } from './write-events.js';

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
export type AGUIStreamOutcome = StreamOutcome;

/** Writes the response head, then the run's AG-UI events, following the log live until it closes. */
export function writeAGUIEvents(res: ServerResponse, log: ReadableLog<AgentEvent>, ids: AGUIRunIDs, opts: AGUIStreamOptions): Promise<AGUIStreamOutcome> {
  const stream = new AGUIStream(ids, opts.from);
  // AG-UI's SSE reader skips frames without `data:`, so the comment and retry hint are safe for it.
  return streamLog(res, log, {
    contentType: 'text/event-stream; charset=utf-8',
    sse: true,
    // From seq 1 even when resuming: the events before `from` tell the stream what is open.
    from: 1,
    heartbeatSec: opts.heartbeatSec,
    headers: opts.headers,
    ...(opts.signal ? { signal: opts.signal } : {}),
    encode: (batch) => {
      let text = '';
      for (const entry of batch) {
        // The log's own serialisation of an AgentEvent (ReadableLog<AgentEvent>); no outside input.
        const event = JSON.parse(entry.json) as AgentEvent;
        const out = stream.push(event);
        out.forEach((ev, i) => {
          const last = i === out.length - 1 && entry.seq >= opts.from;
          text += encodeSSE(last ? { id: entry.seq, data: JSON.stringify(ev) } : { data: JSON.stringify(ev) });
        });
      }
      return text;
    },
    tail: () => {
      let tail = '';
      for (const ev of stream.end()) tail += encodeSSE({ data: JSON.stringify(ev) });
      return tail;
    },
  });
}
