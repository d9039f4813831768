/**
 * Agent runs spoken as the AG-UI protocol (docs/ag-ui.md): `POST /api/sessions/{id}/ag-ui`
 * takes AG-UI's `RunAgentInput`, starts an agent run and streams it as AG-UI events over SSE;
 * `GET /api/agent-runs/{id}/ag-ui` resumes that stream from `?from=` / `Last-Event-ID`.
 */
import type { FastifyInstance } from 'fastify';
import { validateSessionID } from '@sluice/protocol';
import { parseRunAgentInput } from '../agent/ag-ui/parse-run-agent-input.js';
import { ApiError } from '../api-error.js';
import type { AgentRunHandle } from '../backend/agent-backend.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';
import { startSeq } from './start-seq.js';
import { writeAGUIEvents } from './write-agui-events.js';

type SessionRoute = { Params: { id: string } };
type ResumeRoute = { Params: { id: string }; Querystring: { from?: string } };

export function agUIRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Always SSE, whatever `Accept` says: AG-UI's HTTP transport is SSE (its protobuf framing is not offered).
  app.post<SessionRoute>('/api/sessions/:id/ag-ui', async (req, reply) => {
    const owner = ownerOf(req);
    const sessionID = check(validateSessionID(req.params.id));
    const body = check(parseRunAgentInput(req.body));
    const unhealthy = ctx.health();
    if (unhealthy !== null) throw new ApiError('SANDBOX_UNAVAILABLE', unhealthy, { retryAfter: 5 });
    const run = await ctx.agents.start(owner, sessionID, body);
    const detach = ctx.backend.attach(owner, sessionID);
    try {
      reply.hijack();
      const outcome = await writeAGUIEvents(reply.raw, run.log, idsOf(run), {
        from: 1,
        heartbeatSec: body.heartbeat ?? ctx.config.heartbeatSec,
        headers: runHeaders(run),
        signal: ctx.shutdown,
      });
      // A dropped stream is resumable; only a client that asked for it has the run cancelled.
      if (outcome === 'disconnected' && body.on_disconnect === 'cancel') void run.cancel().catch(() => {});
    } finally {
      detach();
    }
    return reply;
  });

  app.get<ResumeRoute>('/api/agent-runs/:id/ag-ui', async (req, reply) => {
    const owner = ownerOf(req);
    const run = await ctx.agents.run(owner, req.params.id);
    const from = startSeq(req.query.from, req.headers['last-event-id']);
    const detach = ctx.backend.attach(owner, run.sessionID);
    try {
      reply.hijack();
      await writeAGUIEvents(reply.raw, run.log, idsOf(run), { from, heartbeatSec: ctx.config.heartbeatSec, headers: runHeaders(run), signal: ctx.shutdown });
    } finally {
      detach();
    }
    return reply;
  });
}

/** AG-UI's thread is the Sluice session, its run the agent run (the id resume and cancel take). */
function idsOf(run: AgentRunHandle): { threadID: string; runID: string } {
  return { threadID: run.sessionID, runID: run.id };
}

function runHeaders(run: AgentRunHandle): Record<string, string> {
  return { 'Sluice-Agent-Run-Id': run.id, Location: `/api/agent-runs/${run.id}` };
}
