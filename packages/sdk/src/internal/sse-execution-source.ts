/**
 * One execution's events over Server-Sent Events (the generic reader, sse-event-source.ts, on
 * the execution endpoints): started with `POST /api/sessions/{id}/stream`, named by the
 * `Sluice-Execution-Id` header or the `start` event, resumed with
 * `GET /api/executions/{id}/events`, over at `done`; plus its commands, cancel and stdin.
 */
import { parseExecutionEvent, type ExecutionEvent, type RunRequest } from '@sluice/protocol';
import type { ExecutionEventSource } from './event-source.js';
import type { HTTPClient } from './http-client.js';
import { SSEEventSource, type SSELog, type SSESourceOptions } from './sse-event-source.js';
import { sendStdin } from './stdin-pieces.js';

/** Where a stream begins: a new run, or an execution that exists, from seq `from` (inclusive). */
export type SSEStart =
  | { kind: 'run'; sessionID: string; body: RunRequest; idempotencyKey: string }
  | { kind: 'attach'; executionID: string; from: number };

const EXECUTION_LOG: SSELog<ExecutionEvent> = {
  noun: 'execution',
  parse: parseExecutionEvent,
  idOf: (ev) => (ev.type === 'start' ? ev.execution_id : undefined),
  isLast: (ev) => ev.type === 'done',
  idHeader: 'sluice-execution-id',
  eventsPath: (id) => `/api/executions/${encodeURIComponent(id)}/events`,
};

export class SSEExecutionSource extends SSEEventSource<ExecutionEvent> implements ExecutionEventSource {
  readonly executionID: Promise<string>;

  constructor(http: HTTPClient, start: SSEStart, opts: SSESourceOptions) {
    super(
      http,
      start.kind === 'run'
        ? { kind: 'start', path: `/api/sessions/${encodeURIComponent(start.sessionID)}/stream`, body: start.body, idempotencyKey: start.idempotencyKey }
        : { kind: 'attach', id: start.executionID, from: start.from },
      opts,
      EXECUTION_LOG,
    );
    this.executionID = this.logID;
  }

  async cancel(): Promise<void> {
    const id = await this.executionID;
    const res = await this.http.request('POST', `/api/executions/${encodeURIComponent(id)}/cancel`, { timeoutMs: this.opts.commandTimeoutMs });
    await res.body?.cancel();
  }

  async stdin(data: string, eof: boolean): Promise<void> {
    const id = await this.executionID;
    await sendStdin(data, eof, async (piece, eofNow) => {
      const json: { data: string; eof?: boolean } = { data: piece };
      if (eofNow) json.eof = true;
      const res = await this.http.request('POST', `/api/executions/${encodeURIComponent(id)}/stdin`, { json, timeoutMs: this.opts.commandTimeoutMs });
      await res.body?.cancel();
    });
  }
}
