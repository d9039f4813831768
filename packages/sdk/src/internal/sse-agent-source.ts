/**
 * One agent run's events over Server-Sent Events (the generic reader, sse-event-source.ts, on
 * the agent endpoints): started with `POST /api/sessions/{id}/agent` and `Accept:
 * text/event-stream`, named by the `Sluice-Agent-Run-Id` header or `agent_start`, resumed with
 * `GET /api/agent-runs/{id}/events` and `Last-Event-ID`, over at `end`; plus its cancel.
 */
import { parseAgentEvent, type AgentEvent, type AgentRequest } from '@sluice/protocol';
import type { HTTPClient } from './http-client.js';
import type { StreamSource } from './live-stream.js';
import { SSEEventSource, type SSELog, type SSESourceOptions } from './sse-event-source.js';

/** Where an agent stream begins: a new run in a session, or a run that exists, from seq `from` (inclusive). */
export type AgentStart = { kind: 'run'; sessionID: string; body: AgentRequest; idempotencyKey: string } | { kind: 'attach'; runID: string; from: number };

const AGENT_LOG: SSELog<AgentEvent> = {
  noun: 'agent run',
  parse: parseAgentEvent,
  idOf: (ev) => (ev.type === 'agent_start' ? ev.run_id : undefined),
  isLast: (ev) => ev.type === 'end',
  idHeader: 'sluice-agent-run-id',
  eventsPath: (id) => `/api/agent-runs/${encodeURIComponent(id)}/events`,
};

export class SSEAgentSource extends SSEEventSource<AgentEvent> implements StreamSource<AgentEvent> {
  constructor(http: HTTPClient, start: AgentStart, opts: SSESourceOptions) {
    super(
      http,
      start.kind === 'run'
        ? { kind: 'start', path: `/api/sessions/${encodeURIComponent(start.sessionID)}/agent`, body: start.body, idempotencyKey: start.idempotencyKey }
        : { kind: 'attach', id: start.runID, from: start.from },
      opts,
      AGENT_LOG,
    );
  }

  /** `POST /api/agent-runs/{id}/cancel` (idempotent: a finished run answers `cancelled: false`). */
  async cancel(): Promise<void> {
    const id = await this.logID;
    const res = await this.http.request('POST', `/api/agent-runs/${encodeURIComponent(id)}/cancel`, { timeoutMs: this.opts.commandTimeoutMs });
    await res.body?.cancel();
  }
}

/** The source of a call whose signal was aborted before it began: it sends nothing, and every read rejects with the abort's reason. */
export function abortedAgentSource(reason: unknown): StreamSource<AgentEvent> & { logID: Promise<string> } {
  const logID = Promise.reject(reason);
  logID.catch(() => {});
  return { logID, next: () => Promise.reject(reason), cancel: async () => {}, close: () => {} };
}
