/** `sluice.executions`: inspect, cancel, feed and follow executions by id. */
import { ExecutionStream, type StreamCallbacks } from './execution-stream.js';
import { reconnectPolicy, type ReconnectOptions } from './internal/backoff.js';
import type { ClientContext } from './internal/client-context.js';
import { SSEExecutionSource } from './internal/sse-execution-source.js';
import { readCancelResult, readExecutionInfo, type CancelResult, type ExecutionInfo } from './views.js';
import { sendStdin } from './internal/stdin-pieces.js';

/** Options of {@link Executions.events}. */
export interface EventsOptions extends StreamCallbacks {
  /** First seq wanted (inclusive), default 1. */
  from?: number | undefined;
  /** Leaving the loop early cancels the execution (default false: this reader only watches). */
  cancelOnLeave?: boolean | undefined;
  signal?: AbortSignal | undefined;
  reconnect?: ReconnectOptions | undefined;
}

/** `sluice.executions`: reads, follows (`events()`), cancels and writes to any execution by id, whatever session ran it. */
export class Executions {
  /** @internal Use `sluice.executions`. */
  constructor(private readonly ctx: ClientContext) {}

  /** State and the fold of the log so far (`GET /api/executions/{id}`). */
  async get(id: string, opts: { signal?: AbortSignal } = {}): Promise<ExecutionInfo> {
    return readExecutionInfo(await this.ctx.http.json('GET', this.path(id), { signal: opts.signal }));
  }

  /** Cancels it: the whole process tree is stopped; its `done` says `cancelled`. */
  async cancel(id: string, opts: { signal?: AbortSignal } = {}): Promise<CancelResult> {
    return readCancelResult(await this.ctx.http.json('POST', `${this.path(id)}/cancel`, { signal: opts.signal }));
  }

  /** Writes to its stdin; `eof` closes stdin after `data`. */
  async stdin(id: string, data: string, opts: { eof?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    // In pieces under the body limit; a piece the server cannot take yet is sent again.
    await sendStdin(data, opts.eof === true, async (piece, eofNow) => {
      const json: { data: string; eof?: boolean } = { data: piece };
      if (eofNow) json.eof = true;
      const res = await this.ctx.http.request('POST', `${this.path(id)}/stdin`, { json, signal: opts.signal });
      await res.body?.cancel();
    });
  }

  /**
   * Its events from `from` (inclusive), replayed from the log and then live until `done`, over
   * SSE, resumed across dropped connections. (`session.attach()` can use the WebSocket too.)
   */
  events(id: string, opts: EventsOptions = {}): ExecutionStream {
    const from = opts.from ?? 1;
    if (!Number.isSafeInteger(from) || from < 1) throw new TypeError(`from: expected the first seq wanted, an integer >= 1, got ${JSON.stringify(from)}`);
    const source = new SSEExecutionSource(
      this.ctx.http,
      { kind: 'attach', executionID: id, from },
      { reconnect: reconnectPolicy(opts.reconnect, this.ctx.reconnect), heartbeatTimeoutMs: this.ctx.heartbeatTimeoutMs, commandTimeoutMs: this.ctx.commandTimeoutMs },
    );
    return new ExecutionStream(source, { cancelOnLeave: false, ...opts, commandTimeoutMs: this.ctx.commandTimeoutMs });
  }

  private path(id: string): string {
    if (typeof id !== 'string' || id === '') throw new TypeError(`execution id: expected a non-empty string, got ${JSON.stringify(id)}`);
    return `/api/executions/${encodeURIComponent(id)}`;
  }
}
