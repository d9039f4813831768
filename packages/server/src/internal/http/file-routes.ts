/**
 * The files API: `GET/PUT/DELETE /api/sessions/{id}/files/{path}` and
 * `GET /api/sessions/{id}/files?dir=` (a listing). Uploads are raw bytes (any content type),
 * at most SLUICE_MAX_UPLOAD. Paths are validated at the edge (workspace-path.ts) and every
 * file is reached through the workspace's nosymfollow view (workspace-files.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validateSessionID } from '@sluice/protocol';
import { workspaceView } from '@sluice/sandbox';
import { deletePath, listDir, openFile, writeFile, type WorkspaceRoot } from '../files/workspace-files.js';
import { parseWorkspacePath } from '../files/workspace-path.js';
import { ownerOf } from './authenticate.js';
import { check, type ServerContext } from './context.js';

type FileRoute = { Params: { id: string; '*'?: string }; Querystring: { dir?: string } };

export function fileRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Its own plugin context: the raw-bytes parser applies to these routes only.
  void app.register(async (files) => {
    files.removeAllContentTypeParsers();
    files.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.maxUploadBytes }, (_req, body, done) => done(null, body));

    const rootOf = async (req: FastifyRequest<FileRoute>): Promise<WorkspaceRoot> => {
      const session = ctx.sessions.get(ownerOf(req), check(validateSessionID(req.params.id)));
      session.touch();
      const dir = await workspaceView(session.workspace);
      return { dir, symlinkSafe: dir !== session.workspace, uid: session.hostUID };
    };
    const pathOf = (req: FastifyRequest<FileRoute>): string[] => check(parseWorkspacePath(req.params['*'] ?? ''));

    const list = async (req: FastifyRequest<FileRoute>, reply: FastifyReply): Promise<unknown> => {
      const root = await rootOf(req);
      const dir = check(parseWorkspacePath(req.query.dir ?? '', 'dir'));
      return reply.send({ dir: dir.join('/'), entries: await listDir(root, dir) });
    };
    files.get<FileRoute>('/api/sessions/:id/files', list);

    files.get<FileRoute>('/api/sessions/:id/files/*', async (req, reply) => {
      const root = await rootOf(req);
      const path = pathOf(req);
      if (path.length === 0) return list(req, reply);
      const file = await openFile(root, path);
      return reply
        .header('Content-Type', 'application/octet-stream')
        // A program's file must never be taken for a script or a page of this origin.
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Length', String(file.size))
        .header('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(path[path.length - 1] ?? 'file')}`)
        .send(file.stream);
    });

    files.put<FileRoute>('/api/sessions/:id/files/*', async (req, reply) => {
      const root = await rootOf(req);
      const path = pathOf(req);
      const body = req.body;
      const data = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
      await writeFile(root, path, data);
      return reply.code(201).send({ path: path.join('/'), size: data.length });
    });

    files.delete<FileRoute>('/api/sessions/:id/files/*', async (req, reply) => {
      const root = await rootOf(req);
      await deletePath(root, pathOf(req));
      return reply.code(204).send();
    });
  });
}
