/**
 * The files API: `GET/PUT/DELETE /api/sessions/{id}/files/{path}` and
 * `GET /api/sessions/{id}/files?dir=` (a listing). Uploads are raw bytes (any content type),
 * at most SLUICE_MAX_UPLOAD. Paths are validated at the edge (workspace-path.ts) and every
 * file is reached through the backend (locally: the workspace's nosymfollow view, workspace-files.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validateSessionID, type Validated } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { SessionFiles } from '../backend/backend.js';
import { parseWorkspacePath } from '../files/workspace-path.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';

type FileRoute = { Params: { id: string; '*'?: string }; Querystring: { dir?: string } };

export function fileRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Its own plugin context: the raw-bytes parser applies to these routes only.
  void app.register(async (files) => {
    files.removeAllContentTypeParsers();
    files.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.maxUploadBytes }, (_req, body, done) => done(null, body));

    const sessionOf = (req: FastifyRequest<FileRoute>): { owner: string | null; id: string } => ({ owner: ownerOf(req), id: check(validateSessionID(req.params.id)) });
    /** A parsed path; a bad one is reported only once the session is known to exist (a missing session answers NOT_FOUND first). */
    const segmentsOf = async (req: FastifyRequest<FileRoute>, parsed: Validated<string[]>): Promise<string[]> => {
      if (parsed.ok) return parsed.value;
      const { owner, id } = sessionOf(req);
      await ctx.backend.session(owner, id);
      throw new ApiError(parsed.code, parsed.message);
    };
    const filesOf = (req: FastifyRequest<FileRoute>): SessionFiles => {
      const { owner, id } = sessionOf(req);
      return ctx.backend.files(owner, id);
    };
    const pathOf = (req: FastifyRequest<FileRoute>): Promise<string[]> => segmentsOf(req, parseWorkspacePath(req.params['*'] ?? ''));

    const list = async (req: FastifyRequest<FileRoute>, reply: FastifyReply): Promise<unknown> => {
      const files = filesOf(req);
      const dir = await segmentsOf(req, parseWorkspacePath(req.query.dir ?? '', 'dir'));
      return reply.send({ dir: dir.join('/'), entries: await files.list(dir) });
    };
    files.get<FileRoute>('/api/sessions/:id/files', list);

    files.get<FileRoute>('/api/sessions/:id/files/*', async (req, reply) => {
      const files = filesOf(req);
      const path = await pathOf(req);
      if (path.length === 0) return list(req, reply);
      const file = await files.open(path);
      return reply
        .header('Content-Type', 'application/octet-stream')
        // A program's file must never be taken for a script or a page of this origin.
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Length', String(file.size))
        .header('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(path[path.length - 1] ?? 'file')}`)
        .send(file.stream);
    });

    files.put<FileRoute>('/api/sessions/:id/files/*', async (req, reply) => {
      const files = filesOf(req);
      const path = await pathOf(req);
      const body = req.body;
      const data = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
      await files.write(path, data);
      return reply.code(201).send({ path: path.join('/'), size: data.length });
    });

    files.delete<FileRoute>('/api/sessions/:id/files/*', async (req, reply) => {
      const files = filesOf(req);
      await files.remove(await pathOf(req));
      return reply.code(204).send();
    });
  });
}
