/** `GET /openapi.json`: the OpenAPI 3.1 document of this API (openapi-document.ts). */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { openAPIDocument } from './openapi-document.js';

/** The server package's version, for `info.version`. */
export function packageVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

export function openAPIRoutes(app: FastifyInstance): void {
  const text = JSON.stringify(openAPIDocument(packageVersion()));
  app.get('/openapi.json', async (_req, reply) => reply.header('Content-Type', 'application/json; charset=utf-8').send(text));
}
