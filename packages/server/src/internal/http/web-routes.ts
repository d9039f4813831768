/**
 * The playground's static files (packages/web, built by `npm run build` into its dist/public):
 * `GET /ui/{file}` for its assets and {@link sendPlayground} for the page that `GET /` answers to
 * browsers. Every answer carries a strict Content-Security-Policy: only this origin's scripts,
 * styles and connections, images also from data: and blob: URLs, nothing framed from
 * anywhere (HTML results are sandboxed srcdoc frames, which inherit this policy) and the page
 * itself never framed. Content-hashed assets are cached for a year; the page is revalidated.
 * A server whose playground was not built still starts; the page then answers 503 saying why.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from '../api-error.js';

/** The policy of the page and its assets (DESIGN "HTTP API": the playground fetches nothing from elsewhere). */
export const PLAYGROUND_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "frame-src 'none'",
  "worker-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A file name of dist/public: one segment, no leading dot, so no path can leave the directory. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** esbuild's `[name]-[hash]` names: their content never changes under the same name. */
const HASHED = /-[A-Z0-9]{8}\.(js|css)(\.map)?$/;

/** The built files' directory, found through the package (no repository layout assumed), or why not. */
function publicDir(): { dir: string } | { problem: string } {
  try {
    const pkg = createRequire(import.meta.url).resolve('@sluice/web/package.json');
    return { dir: join(dirname(pkg), 'dist', 'public') };
  } catch {
    return { problem: 'the playground package (@sluice/web) is not installed beside the server' };
  }
}

const located = publicDir();

/** Reads one built file, or null when it is missing. */
async function readPublic(name: string): Promise<Buffer | null> {
  if (!('dir' in located)) return null;
  try {
    return await readFile(join(located.dir, name));
  } catch {
    return null;
  }
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('Content-Security-Policy', PLAYGROUND_CSP)
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('Cross-Origin-Opener-Policy', 'same-origin')
    .header('Cross-Origin-Resource-Policy', 'same-origin');
}

/** Sends a built file with its type, caching and validator; 304 when the client's copy is current. */
function sendFile(reply: FastifyReply, name: string, body: Buffer, ifNoneMatch: string | undefined): FastifyReply {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  securityHeaders(reply)
    .header('Content-Type', CONTENT_TYPES[extname(name)] ?? 'application/octet-stream')
    .header('Cache-Control', HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache')
    .header('ETag', etag);
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`)) return reply.code(304).send();
  return reply.send(body);
}

/** Answers `GET /` for a browser: the page, or 503 in plain text when it was not built. */
export async function sendPlayground(reply: FastifyReply, ifNoneMatch: string | undefined): Promise<FastifyReply> {
  const page = await readPublic('index.html');
  if (page === null) {
    const why = 'problem' in located ? located.problem : `${join(located.dir, 'index.html')} is missing`;
    return securityHeaders(reply)
      .code(503)
      .header('Content-Type', 'text/plain; charset=utf-8')
      .header('Cache-Control', 'no-store')
      .send(`The playground is not built: ${why}. Run \`npm run build\` in the repository (it bundles packages/web). The API works without it; GET / with Accept: application/json lists its endpoints.\n`);
  }
  return sendFile(reply, 'index.html', page, ifNoneMatch);
}

/** Registers `GET /ui/{file}` (HEAD too); open without a key, as the page is (authenticate.ts). */
export function webRoutes(app: FastifyInstance): void {
  app.get<{ Params: { file: string } }>('/ui/:file', async (req, reply) => {
    const name = req.params.file;
    const body = FILE_NAME.test(name) ? await readPublic(name) : null;
    if (body === null) throw new ApiError('NOT_FOUND', `no playground file ${JSON.stringify(name)}: the playground's files are the ones its build wrote (docs/playground.md)`);
    return sendFile(reply, name, body, req.headers['if-none-match']);
  });
}
