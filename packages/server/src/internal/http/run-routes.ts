/**
 * `POST /api/sessions/{id}/run` (JSON, SSE or NDJSON by `Accept`) and `/stream` (always SSE).
 * A run on an unknown session id creates the session with defaults.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseRunRequest, validateSessionID } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { ExecutionHandle } from '../backend/backend.js';
import { parseIdempotencyKey, requestFingerprint } from './idempotency-cache.js';
import { untilFinishedOrClosed } from './until-finished.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';
import { negotiate, type ResponseFormat } from './negotiate.js';
import { writeEvents } from './write-events.js';

type RunRoute = { Params: { id: string } };

export function runRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<RunRoute>('/api/sessions/:id/run', (req, reply) => run(ctx, req, reply, negotiate(req.headers.accept, 'json')));
  app.post<RunRoute>('/api/sessions/:id/stream', (req, reply) => run(ctx, req, reply, 'sse'));
}

async function run(ctx: ServerContext, req: FastifyRequest<RunRoute>, reply: FastifyReply, format: ResponseFormat): Promise<unknown> {
  const owner = ownerOf(req);
  const sessionID = check(validateSessionID(req.params.id));
  const body = check(parseRunRequest(req.body));
  const unhealthy = ctx.health();
  if (unhealthy !== null) throw new ApiError('SANDBOX_UNAVAILABLE', unhealthy, { retryAfter: 5 });

  const idemKey = parseIdempotencyKey(req.headers['idempotency-key']);
  const exec =
    idemKey === undefined
      ? await ctx.backend.submitRun(owner, sessionID, body, req.log)
      : await ctx.backend.execution(
          owner,
          await ctx.idempotency.resolve(
            owner,
            idemKey,
            requestFingerprint(sessionID, body),
            (id) => ctx.backend.hasExecution(owner, id),
            async () => (await ctx.backend.submitRun(owner, sessionID, body, req.log)).id,
          ),
        );

  const headers = { 'Sluice-Execution-Id': exec.id, Location: `/api/executions/${exec.id}` };
  const cancelOnDisconnect = body.on_disconnect === 'cancel';
  const detach = ctx.backend.attach(owner, exec.sessionID);
  try {
    if (format === 'json') {
      const finished = await untilFinishedOrClosed(exec.finished, reply);
      if (!finished) {
        if (cancelOnDisconnect) cancelQuietly(exec, ctx, req);
        return reply;
      }
      return reply.headers(headers).send(await exec.result());
    }
    reply.hijack();
    const outcome = await writeEvents(reply.raw, exec.log, {
      format,
      from: 1,
      heartbeatSec: body.heartbeat ?? ctx.config.heartbeatSec,
      headers,
      signal: ctx.shutdown,
    });
    if (outcome === 'disconnected' && cancelOnDisconnect) cancelQuietly(exec, ctx, req);
    return reply;
  } finally {
    detach();
  }
}

/** Cancels a run whose client has gone: nobody is left to answer, so a failure is only logged. */
function cancelQuietly(exec: ExecutionHandle, ctx: ServerContext, req: FastifyRequest): void {
  exec.cancel(ctx.config.killGraceMs).catch((err: unknown) => req.log.warn({ err, execution: exec.id }, 'could not cancel a run whose client disconnected'));
}
