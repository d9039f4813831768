/**
 * The worker's internal HTTP endpoint, which API nodes call for what does not fit a command in
 * Redis: session views and the files API (downloads and uploads stream, they are not carried
 * through Redis). Routes under `/internal/v1/`; a request carries the worker's token
 * (`Sluice-Worker-Token`, from its registration in Redis) and the owner the API node
 * authenticated (`Sluice-Owner`: JSON, a string or null), so the worker trusts the API node's
 * authentication and never sees the client's API key. Paths travel as a JSON array of
 * segments, validated again here.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { validateSessionID } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { LocalBackend } from '../backend/local-backend.js';
import { parseWorkspacePath } from '../files/workspace-path.js';
import { check } from '../http/context.js';

export const INTERNAL_PREFIX = '/internal/v1/';
export const TOKEN_HEADER = 'sluice-worker-token';
export const OWNER_HEADER = 'sluice-owner';

type SessionRoute = { Params: { id: string }; Querystring: { path?: string; dir?: string } };

/** The internal routes of a worker; `token()` is its registration's token (null before it registered). */
export function internalRoutes(app: FastifyInstance, local: LocalBackend, token: () => string | null, maxUploadBytes: number): void {
  void app.register(async (api) => {
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxUploadBytes }, (_req, body, done) => done(null, body));
    api.addHook('onRequest', async (req) => {
      const expected = token();
      if (expected === null) throw new ApiError('SANDBOX_UNAVAILABLE', 'this worker has not registered in Redis yet', { retryAfter: 1 });
      const given = req.headers[TOKEN_HEADER];
      if (typeof given !== 'string' || !sameSecret(given, expected)) throw new ApiError('UNAUTHORIZED', `${TOKEN_HEADER}: expected this worker's token`);
    });

    api.get(`${INTERNAL_PREFIX}sessions`, async (req) => ({ sessions: await local.listSessions(ownerOf(req)) }));
    api.get<SessionRoute>(`${INTERNAL_PREFIX}sessions/:id`, async (req) => local.session(ownerOf(req), sessionOf(req)));
    api.get<SessionRoute>(`${INTERNAL_PREFIX}sessions/:id/files`, async (req) => ({ entries: await local.files(ownerOf(req), sessionOf(req)).list(pathOf(req.query.dir)) }));
    api.get<SessionRoute>(`${INTERNAL_PREFIX}sessions/:id/file`, async (req, reply) => {
      const file = await local.files(ownerOf(req), sessionOf(req)).open(pathOf(req.query.path));
      return reply.header('Content-Type', 'application/octet-stream').header('Content-Length', String(file.size)).send(file.stream);
    });
    api.put<SessionRoute>(`${INTERNAL_PREFIX}sessions/:id/file`, async (req, reply) => {
      const data = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      await local.files(ownerOf(req), sessionOf(req)).write(pathOf(req.query.path), data);
      return reply.code(204).send();
    });
    api.delete<SessionRoute>(`${INTERNAL_PREFIX}sessions/:id/file`, async (req, reply) => {
      await local.files(ownerOf(req), sessionOf(req)).remove(pathOf(req.query.path));
      return reply.code(204).send();
    });
  });
}

/** The owner an API node sends: JSON null or a string. */
export function ownerOf(req: FastifyRequest): string | null {
  const raw = req.headers[OWNER_HEADER];
  if (typeof raw !== 'string') throw new ApiError('INVALID_REQUEST', `${OWNER_HEADER}: expected JSON null or a string`);
  const v = parseJSON(raw, OWNER_HEADER);
  if (v !== null && typeof v !== 'string') throw new ApiError('INVALID_REQUEST', `${OWNER_HEADER}: expected JSON null or a string`);
  return v;
}

function sessionOf(req: FastifyRequest<SessionRoute>): string {
  return check(validateSessionID(req.params.id));
}

/** Segments sent as a JSON array, validated as the public files API validates a path. */
function pathOf(raw: string | undefined): string[] {
  const v = parseJSON(raw ?? '[]', 'path');
  if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) throw new ApiError('INVALID_REQUEST', 'path: expected a JSON array of segments');
  return check(parseWorkspacePath(v.join('/')));
}

/** JSON from a header or query parameter; malformed is the caller's mistake (400), not ours. */
function parseJSON(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ApiError('INVALID_REQUEST', `${what}: expected JSON`);
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
