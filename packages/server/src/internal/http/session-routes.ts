/** `POST/GET/DELETE /api/sessions…` */
import type { FastifyInstance } from 'fastify';
import { parseCreateSessionRequest, validateSessionID } from '@sluice/protocol';
import { restartKernels } from '../session/restart-kernels.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';
import { sessionView } from './views.js';

export function sessionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/sessions', async (req, reply) => {
    const body = check(parseCreateSessionRequest(req.body));
    const session = await ctx.sessions.create(ownerOf(req), body);
    return reply.code(201).header('Location', `/api/sessions/${session.id}`).send(sessionView(session));
  });

  app.get('/api/sessions', async (req) => ({ sessions: ctx.sessions.list(ownerOf(req)).map(sessionView) }));

  app.get<{ Params: { id: string } }>('/api/sessions/:id', async (req) => {
    const id = check(validateSessionID(req.params.id));
    // Looking at a session is not activity: only runs and attached readers keep it alive.
    return sessionView(ctx.sessions.get(ownerOf(req), id));
  });

  app.delete<{ Params: { id: string } }>('/api/sessions/:id', async (req, reply) => {
    const id = check(validateSessionID(req.params.id));
    await ctx.sessions.delete(ownerOf(req), id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/sessions/:id/restart', async (req) => {
    const id = check(validateSessionID(req.params.id));
    const session = ctx.sessions.get(ownerOf(req), id);
    const stopped = await restartKernels(session);
    return { ...sessionView(session), restarted: stopped };
  });
}
