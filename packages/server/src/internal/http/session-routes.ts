/** `POST/GET/DELETE /api/sessions…` */
import type { FastifyInstance } from 'fastify';
import { parseCreateSessionRequest, validateSessionID } from '@sluice/protocol';
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

  // Restarting is activity (it is a command to the session), unlike looking at it.
  app.post<{ Params: { id: string } }>('/api/sessions/:id/restart', async (req) => {
    const id = check(validateSessionID(req.params.id));
    const session = ctx.sessions.get(ownerOf(req), id);
    session.touch();
    const running = session.current;
    // A cell running now ends as cancelled, with kernel_restarted in its done.
    if (running?.mode === 'kernel') running.stop('cancelled', 0);
    const stopped = session.liveKernels.map((k) => k.language);
    await session.stopKernels();
    return { ...sessionView(session), restarted: stopped };
  });
}
