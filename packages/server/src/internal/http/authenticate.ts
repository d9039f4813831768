/**
 * Bearer authentication for every route but `GET /healthz` and the playground's page and files
 * (static, no secret in them: the page asks for the key and sends it with its API calls). With API keys configured, a request
 * without a valid `Authorization: Bearer <key>` is answered 401 UNAUTHORIZED with
 * `WWW-Authenticate: Bearer` before its body is read; otherwise the request carries its tenant,
 * whose id owns what it creates. Keys are taken from the header only: a key in the query string
 * would end up in access logs, proxies and browser history.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ErrorBody } from '@sluice/protocol';
import type { KeyRing, Tenant } from '../auth/api-keys.js';
import { wantsHTML } from './wants-html.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request; null when the server runs without API keys. */
    tenant: Tenant | null;
  }
}

/** Routes anyone may call: load balancers probe health without a key. */
const OPEN_PATHS = new Set(['/healthz']);

/** Installs the check on every route of `app`. */
export function authenticate(app: FastifyInstance, keys: KeyRing): void {
  app.decorateRequest('tenant', null);
  if (!keys.enabled) return;
  app.addHook('onRequest', async (req, reply) => {
    if (isOpen(req)) return;
    const r = keys.authenticate(req.headers.authorization);
    if ('reason' in r) {
      // RFC 6750 §3: no error code when the request had no credentials at all.
      const challenge = r.reason === 'missing' ? 'Bearer realm="sluice"' : `Bearer realm="sluice", error="${r.reason === 'malformed' ? 'invalid_request' : 'invalid_token'}"`;
      const body: ErrorBody = { error: { code: 'UNAUTHORIZED', message: r.message } };
      void reply.code(401).header('WWW-Authenticate', challenge);
      // An unread body would otherwise be read to its end to keep the connection: close instead.
      if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) void reply.header('Connection', 'close');
      return reply.send(body);
    }
    req.tenant = r;
    req.log = req.log.child({ tenant: r.label });
    return undefined;
  });
}

/** True for `GET /healthz`, and for the playground: `GET /` wanting HTML, `GET /ui/…` (HEAD too). */
function isOpen(req: FastifyRequest): boolean {
  const path = req.url.split('?')[0] ?? '';
  if (OPEN_PATHS.has(path)) return true;
  // A worker's internal routes check the worker's own token instead (cluster/internal-api.ts):
  // the route matched, not the raw URL, which the router decodes before matching.
  if (req.routeOptions.url?.startsWith('/internal/')) return true;
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  return path.startsWith('/ui/') || (path === '/' && wantsHTML(req.headers.accept));
}

/** The owner id of what this request creates or may see: its tenant's, or null without keys. */
export function ownerOf(req: FastifyRequest): string | null {
  return req.tenant?.id ?? null;
}
