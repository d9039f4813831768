/**
 * `GET /openapi.json` against the server's real routes: a server built in this process (so its
 * Fastify instance can be asked what it registered) serves a document whose operations are
 * exactly the registered routes, both ways: a route added without documentation fails here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createSluiceServer, loadConfig, type SluiceServer } from '@sluice/server';

let server: SluiceServer;
let url: string;
let dataDir: string;
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-openapi-'));
  server = await createSluiceServer(loadConfig({ SLUICE_LOG_LEVEL: 'silent', SLUICE_WARM_RUNTIMES: 'false' }, { port: 0, dataDir }));
  url = await server.listen();
});
after(async () => {
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

test('the served document is valid OpenAPI 3.1', async () => {
  const res = await fetch(`${url}/openapi.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const validator = new Validator();
  const r = await validator.validate((await res.json()) as Record<string, unknown>);
  assert.deepEqual(r.errors, undefined);
  assert.equal(validator.version, '3.1');
});

test('its operations are exactly the routes the server registered', async () => {
  const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const documented: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      // OpenAPI's {id} is Fastify's :id; the files route's {path} is its wildcard.
      const route = path.replace('{path}', '*').replace(/\{([a-z_]+)\}/g, ':$1');
      assert.ok(server.app.hasRoute({ method: method.toUpperCase() as 'GET', url: route }), `documented but not served: ${method.toUpperCase()} ${path}`);
      documented.push(`${method.toUpperCase()} ${route}`);
    }
  }
  // Every method of every registered route (HEAD is Fastify's automatic twin of each GET).
  const tree = server.app.printRoutes({ commonPrefix: false });
  const registered = [...tree.matchAll(/\(([A-Z, ]+)\)/g)].flatMap((m) => (m[1] ?? '').split(', ')).filter((m) => m !== 'HEAD');
  assert.equal(registered.length, documented.length, `routes served without documentation (or twice):\n${tree}\ndocumented:\n${documented.sort().join('\n')}`);
});
