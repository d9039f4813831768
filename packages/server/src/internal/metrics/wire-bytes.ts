/**
 * Counts the bytes streams put on the wire without a call in any writer: each tracked response
 * or WebSocket remembers its connection's `bytesWritten` when it began, and a scrape (or its
 * end) adds what was written since. A long stream so shows in every scrape while it runs.
 * HTTP/1.1 answers one request at a time per connection, so the difference is that response's.
 */
import type { ServerResponse } from 'node:http';
import type { StreamTransport } from './server-metrics.js';

/** What a connection tells of itself. */
interface Written {
  readonly bytesWritten: number;
}

interface Tracked {
  socket: Written;
  /** `bytesWritten` already counted (the baseline at first). */
  counted: number;
  /** The transport, once the response's head says which; null for an answer that is none. */
  transport(): StreamTransport | null;
}

export class WireBytes {
  private readonly open = new Set<Tracked>();
  private readonly pending: Partial<Record<StreamTransport, number>> = {};

  /**
   * Tracks an HTTP response until it closes. `buffered` says whether a JSON answer of this route
   * is a run's buffered result (the `json` transport); other JSON answers are not streams.
   */
  trackResponse(res: ServerResponse, buffered: boolean): void {
    const socket = res.socket;
    if (!socket) return;
    const t: Tracked = { socket, counted: socket.bytesWritten, transport: () => transportOf(res, buffered) };
    this.open.add(t);
    res.once('close', () => {
      this.take(t);
      this.open.delete(t);
    });
  }

  /** Tracks an upgraded WebSocket connection until it closes. */
  trackWebSocket(socket: Written & { once(event: 'close', listener: () => void): unknown }): void {
    const t: Tracked = { socket, counted: socket.bytesWritten, transport: () => 'websocket' };
    this.open.add(t);
    socket.once('close', () => {
      this.take(t);
      this.open.delete(t);
    });
  }

  /** Bytes written since the last call, per transport. */
  drain(): Partial<Record<StreamTransport, number>> {
    for (const t of this.open) this.take(t);
    const out = { ...this.pending };
    for (const k of Object.keys(this.pending) as StreamTransport[]) delete this.pending[k];
    return out;
  }

  private take(t: Tracked): void {
    const transport = t.transport();
    const now = t.socket.bytesWritten;
    if (transport === null) return;
    const delta = now - t.counted;
    t.counted = now;
    if (delta > 0) this.pending[transport] = (this.pending[transport] ?? 0) + delta;
  }
}

function transportOf(res: ServerResponse, buffered: boolean): StreamTransport | null {
  if (!res.headersSent) return null;
  const type = String(res.getHeader('content-type') ?? '');
  if (type.startsWith('text/event-stream')) return 'sse';
  if (type.startsWith('application/x-ndjson')) return 'ndjson';
  if (buffered && type.startsWith('application/json')) return 'json';
  return null;
}
