/** `POST/GET/DELETE /api/sessions…` */
import type { FastifyInstance } from 'fastify';
import { parseCreateSessionRequest, validateSessionID } from '@sluice/protocol';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';

export function sessionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/sessions', async (req, reply) => {
    const body = check(parseCreateSessionRequest(req.body));
    const session = await ctx.backend.createSession(ownerOf(req), body);
    return reply.code(201).header('Location', `/api/sessions/${session.id}`).send(session);
  });

  app.get('/api/sessions', async (req) => ({ sessions: await ctx.backend.listSessions(ownerOf(req)) }));

  app.get<{ Params: { id: string } }>('/api/sessions/:id', async (req) => {
    const id = check(validateSessionID(req.params.id));
    // Looking at a session is not activity: only runs and attached readers keep it alive.
    return ctx.backend.session(ownerOf(req), id);
  });

  app.delete<{ Params: { id: string } }>('/api/sessions/:id', async (req, reply) => {
    const id = check(validateSessionID(req.params.id));
    await ctx.backend.deleteSession(ownerOf(req), id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/sessions/:id/restart', async (req) => {
    const id = check(validateSessionID(req.params.id));
    return ctx.backend.restartSession(ownerOf(req), id);
  });
}
