import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { KeyRing, tenantID } from '../auth/api-keys.js';
import { authenticate, ownerOf } from './authenticate.js';

const KEY = 'k'.repeat(20);

function appWith(keys: KeyRing) {
  const app = Fastify();
  authenticate(app, keys);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/whoami', async (req) => ({ owner: ownerOf(req) }));
  app.post('/echo', async (req) => ({ owner: ownerOf(req), body: req.body }));
  return app;
}

test('with keys: 401 before the route runs, with the challenge and the contract body; /healthz is open', async () => {
  const app = appWith(new KeyRing([{ name: 'ops', key: KEY }]));
  const none = await app.inject({ url: '/whoami' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer realm="sluice"');
  assert.deepEqual(none.json(), { error: { code: 'UNAUTHORIZED', message: 'Authorization: expected "Bearer <API key>", got nothing' } });
  const wrong = await app.inject({ url: '/whoami', headers: { authorization: `Bearer ${KEY}!` } });
  assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="sluice", error="invalid_token"');
  // A refused request with a body closes the connection rather than reading the body.
  const posted = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
  assert.equal(posted.statusCode, 401);
  assert.equal(posted.headers['connection'], 'close');
  const unknown = await app.inject({ url: '/nowhere' });
  assert.equal(unknown.statusCode, 401, 'no route map for strangers');

  assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  const ok = await app.inject({ url: '/whoami', headers: { authorization: `Bearer ${KEY}` } });
  assert.deepEqual(ok.json(), { owner: tenantID(KEY) });
  await app.close();
});

test('without keys every request is the anonymous owner', async () => {
  const app = appWith(new KeyRing([]));
  const res = await app.inject({ url: '/whoami', headers: { authorization: 'Bearer whatever' } });
  assert.deepEqual(res.json(), { owner: null });
  await app.close();
});
