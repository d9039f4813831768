/** `GET /api/executions/{id}`, `…/events` (replay, then live), `POST …/stdin` and `POST …/cancel`. */
import type { FastifyInstance } from 'fastify';
import { parseStdinRequest } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';
import { negotiate } from './negotiate.js';
import { startSeq } from './start-seq.js';
import { writeEvents } from './write-events.js';

type ExecRoute = { Params: { id: string } };
type EventsRoute = ExecRoute & { Querystring: { from?: string } };

export function executionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<ExecRoute>('/api/executions/:id', async (req) => (await ctx.backend.execution(ownerOf(req), req.params.id)).view());

  app.get<EventsRoute>('/api/executions/:id/events', async (req, reply) => {
    const owner = ownerOf(req);
    const exec = await ctx.backend.execution(owner, req.params.id);
    const from = startSeq(req.query.from, req.headers['last-event-id']);
    const format = negotiate(req.headers.accept, 'sse');
    if (format === 'json') throw new ApiError('INVALID_REQUEST', 'Accept: expected text/event-stream or application/x-ndjson, got application/json; use GET /api/executions/{id} for the folded result');
    // Nothing more will ever come: 204 tells an EventSource to stop reconnecting.
    if (exec.log.closed && from > exec.log.lastSeq) return reply.code(204).send();
    const detach = ctx.backend.attach(owner, exec.sessionID);
    try {
      reply.hijack();
      await writeEvents(reply.raw, exec.log, {
        format,
        from,
        heartbeatSec: ctx.config.heartbeatSec,
        headers: { 'Sluice-Execution-Id': exec.id },
        signal: ctx.shutdown,
      });
    } finally {
      detach();
    }
    return reply;
  });

  app.post<ExecRoute>('/api/executions/:id/stdin', async (req, reply) => {
    const exec = await ctx.backend.execution(ownerOf(req), req.params.id);
    const body = check(parseStdinRequest(req.body));
    const { state } = await exec.writeStdin(body.data, body.eof === true);
    return reply.code(202).send({ execution_id: exec.id, state, bytes: Buffer.byteLength(body.data), eof: body.eof === true });
  });

  app.post<ExecRoute>('/api/executions/:id/cancel', async (req, reply) => {
    const exec = await ctx.backend.execution(ownerOf(req), req.params.id);
    const { state, cancelled } = await exec.cancel(ctx.config.killGraceMs);
    return reply.code(cancelled ? 202 : 200).send({ execution_id: exec.id, state, cancelled });
  });
}
