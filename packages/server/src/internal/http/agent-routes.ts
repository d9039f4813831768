/**
 * Agent runs over HTTP: `POST /api/sessions/{id}/agent` (JSON, SSE or NDJSON by `Accept`),
 * `GET /api/agent-runs/{id}` and `…/events` (replay, then live), `POST …/cancel`, and
 * `DELETE /api/sessions/{id}/agent` (forget the conversation).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_STATUS, isErrorCode, parseAgentRequest, validateSessionID } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { AgentRunHandle } from '../backend/agent-backend.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';
import { parseIdempotencyKey, requestFingerprint } from './idempotency-cache.js';
import { negotiate, type ResponseFormat } from './negotiate.js';
import { startSeq } from './start-seq.js';
import { untilFinishedOrClosed } from './until-finished.js';
import { writeEvents } from './write-events.js';

type SessionRoute = { Params: { id: string } };
type RunRoute = { Params: { id: string } };
type EventsRoute = RunRoute & { Querystring: { from?: string } };

export function agentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<SessionRoute>('/api/sessions/:id/agent', (req, reply) => start(ctx, req, reply, negotiate(req.headers.accept, 'json')));

  app.delete<SessionRoute>('/api/sessions/:id/agent', async (req, reply) => {
    const owner = ownerOf(req);
    const session = await ctx.backend.session(owner, check(validateSessionID(req.params.id)));
    await ctx.agents.forget(owner, session.id);
    return reply.code(204).send();
  });

  app.get<RunRoute>('/api/agent-runs/:id', async (req) => (await ctx.agents.run(ownerOf(req), req.params.id)).view());

  app.get<EventsRoute>('/api/agent-runs/:id/events', async (req, reply) => {
    const owner = ownerOf(req);
    const run = await ctx.agents.run(owner, req.params.id);
    const from = startSeq(req.query.from, req.headers['last-event-id']);
    const format = negotiate(req.headers.accept, 'sse');
    if (format === 'json') throw new ApiError('INVALID_REQUEST', 'Accept: expected text/event-stream or application/x-ndjson, got application/json; use GET /api/agent-runs/{id} for the folded result');
    // Nothing more will ever come: 204 tells an EventSource to stop reconnecting.
    if (run.log.closed && from > run.log.lastSeq) return reply.code(204).send();
    const detach = ctx.backend.attach(owner, run.sessionID);
    try {
      reply.hijack();
      await writeEvents(reply.raw, run.log, { format, from, heartbeatSec: ctx.config.heartbeatSec, headers: runHeaders(run), signal: ctx.shutdown });
    } finally {
      detach();
    }
    return reply;
  });

  app.post<RunRoute>('/api/agent-runs/:id/cancel', async (req, reply) => {
    const run = await ctx.agents.run(ownerOf(req), req.params.id);
    const { state, cancelled } = await run.cancel();
    return reply.code(cancelled ? 202 : 200).send({ run_id: run.id, state, cancelled });
  });
}

async function start(ctx: ServerContext, req: FastifyRequest<SessionRoute>, reply: FastifyReply, format: ResponseFormat): Promise<unknown> {
  const owner = ownerOf(req);
  const sessionID = check(validateSessionID(req.params.id));
  const body = check(parseAgentRequest(req.body));
  const unhealthy = ctx.health();
  if (unhealthy !== null) throw new ApiError('SANDBOX_UNAVAILABLE', unhealthy, { retryAfter: 5 });

  const idemKey = parseIdempotencyKey(req.headers['idempotency-key']);
  const run =
    idemKey === undefined
      ? await ctx.agents.start(owner, sessionID, body)
      : await ctx.agents.run(
          owner,
          await ctx.idempotency.resolve(
            owner,
            idemKey,
            requestFingerprint(`agent:${sessionID}`, body),
            (id) => ctx.agents.has(owner, id),
            async () => (await ctx.agents.start(owner, sessionID, body)).id,
          ),
        );

  const cancelOnDisconnect = body.on_disconnect === 'cancel';
  const detach = ctx.backend.attach(owner, sessionID);
  try {
    if (format === 'json') {
      const finished = await untilFinishedOrClosed(run.finished, reply);
      if (!finished) {
        if (cancelOnDisconnect) void run.cancel().catch(() => {});
        return reply;
      }
      const view = await run.view();
      void reply.headers(runHeaders(run));
      // A run the model endpoint failed answers with that error's status; the fold goes along.
      if (view.reason === 'error' && view.error !== null) {
        const code = isErrorCode(view.error.code) ? view.error.code : 'INTERNAL';
        return reply.code(ERROR_STATUS[code]).send({ error: { code, message: view.error.message }, run: view });
      }
      return reply.send(view);
    }
    reply.hijack();
    const outcome = await writeEvents(reply.raw, run.log, {
      format,
      from: 1,
      heartbeatSec: body.heartbeat ?? ctx.config.heartbeatSec,
      headers: runHeaders(run),
      signal: ctx.shutdown,
    });
    if (outcome === 'disconnected' && cancelOnDisconnect) void run.cancel().catch(() => {});
    return reply;
  } finally {
    detach();
  }
}

function runHeaders(run: AgentRunHandle): Record<string, string> {
  return { 'Sluice-Agent-Run-Id': run.id, Location: `/api/agent-runs/${run.id}` };
}
