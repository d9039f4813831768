/**
 * Admission control end to end: sandboxes (sessions with an execution running or queued) and
 * sessions are capped per tenant and server-wide; past a cap a request is refused at once with
 * 429 RATE_LIMITED and `Retry-After`, without creating anything, while what already runs goes
 * on; capacity comes back as soon as executions finish or sessions go.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.js';
import { assertContiguous, doneOf, postJSON, readSSE, text, type Timed } from '../helpers/client.js';

const KEY_A = randomBytes(24).toString('hex');
const KEY_B = randomBytes(24).toString('hex');
const UID_BASE = 7_000_000 + randomInt(0, 50_000) * 64;

let server: TestServer;
before(async () => {
  server = await startServer({
    SLUICE_API_KEYS: `a:${KEY_A},b:${KEY_B}`,
    SLUICE_MAX_RUNNING: '4',
    SLUICE_MAX_RUNNING_PER_TENANT: '3',
    SLUICE_MAX_SESSIONS: '8',
    SLUICE_MAX_SESSIONS_PER_TENANT: '5',
    SLUICE_UID_BASE: String(UID_BASE),
    SLUICE_UID_COUNT: '64',
    SLUICE_KILL_GRACE_MS: '300',
  });
});
after(async () => {
  await server?.stop();
});

type JSONObject = Record<string, unknown>;

function auth(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

interface Live {
  id: string;
  events: Promise<Timed[]>;
}

/** Starts an SSE run and returns once its headers are in (the execution exists). */
async function start(key: string, session: string, code: string): Promise<Live> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/stream`, { code, language: 'bash' }, auth(key));
  assert.equal(res.status, 200, `stream on ${session} answered ${res.status}`);
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id);
  const events = readSSE(res);
  events.catch(() => {});
  return { id, events };
}

async function cancel(key: string, live: Live): Promise<Timed[]> {
  const res = await fetch(`${server.url}/api/executions/${live.id}/cancel`, { method: 'POST', headers: auth(key) });
  assert.ok(res.status === 202 || res.status === 200, `cancel answered ${res.status}`);
  await res.body?.cancel();
  const events = await live.events;
  assert.equal(doneOf(events).reason, 'cancelled');
  return events;
}

/** Asserts a 429 RATE_LIMITED with a whole number of seconds in Retry-After and a message naming the cap. */
async function assertRateLimited(res: Response, cap: RegExp, what: string): Promise<void> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  assert.equal(res.status, 429, `${what}: ${JSON.stringify(body)}`);
  assert.equal(body.error?.code, 'RATE_LIMITED', what);
  assert.match(body.error?.message ?? '', cap, what);
  const retryAfter = res.headers.get('retry-after');
  assert.match(retryAfter ?? '', /^[1-9]\d*$/, `${what}: Retry-After is whole seconds, got ${String(retryAfter)}`);
}

async function sessionIDs(key: string): Promise<string[]> {
  const res = await fetch(`${server.url}/api/sessions`, { headers: auth(key) });
  const body = (await res.json()) as { sessions: JSONObject[] };
  return body.sessions.map((s) => String(s['id'])).sort();
}

async function runText(key: string, session: string, code: string): Promise<Response> {
  return postJSON(`${server.url}/api/sessions/${session}/run`, { code, language: 'bash' }, auth(key));
}

const SLEEP = 'echo up; sleep 30';

test('running caps: per tenant, then server-wide, answer 429 + Retry-After at once; capacity returns as runs finish', async () => {
  const a1 = await start(KEY_A, 'a1', SLEEP);
  const a2 = await start(KEY_A, 'a2', SLEEP);
  const a3 = await start(KEY_A, 'a3', SLEEP);

  // A holds 3 sandboxes, its cap (the server has 1 free): a fourth is refused at once, and no
  // session is created for it.
  const t0 = performance.now();
  await assertRateLimited(await runText(KEY_A, 'a4', 'echo no'), /SLUICE_MAX_RUNNING_PER_TENANT/, 'A past its own cap');
  assert.ok(performance.now() - t0 < 2000, 'refused at once, not queued');
  assert.deepEqual(await sessionIDs(KEY_A), ['a1', 'a2', 'a3'], 'no session a4 was left behind');

  // A well-behaved tenant takes the last sandbox and streams for about 3 s.
  const ticks = await start(KEY_B, 'b-ticks', 'for i in $(seq 0 14); do echo "tick $i"; sleep 0.2; done');
  // Now the server is full: B, under its own cap, meets the server-wide one.
  await assertRateLimited(await runText(KEY_B, 'b1', 'echo no'), /SLUICE_MAX_RUNNING\)/, 'server past its cap');
  await assertRateLimited(await runText(KEY_A, 'a4', 'echo no'), /SLUICE_MAX_RUNNING/, 'A, full server');
  // A run on a session that already holds a sandbox waits in that session's queue instead.
  const queued = await start(KEY_A, 'a1', 'echo queued');
  const state = (await (await fetch(`${server.url}/api/executions/${queued.id}`, { headers: auth(KEY_A) })).json()) as JSONObject;
  assert.equal(state['state'], 'queued');
  const healthz = await fetch(`${server.url}/healthz`);
  assert.equal(healthz.status, 200, 'a full server is still healthy');
  await healthz.body?.cancel();

  // The well-behaved stream got every tick in order while the caps were refusing others.
  const tickEvents = await ticks.events;
  assertContiguous(tickEvents);
  const tickDone = doneOf(tickEvents);
  assert.equal(tickDone.reason, 'exited', JSON.stringify(tickDone));
  assert.equal(text(tickEvents, 'stdout'), Array.from({ length: 15 }, (_, i) => `tick ${i}\n`).join(''));

  // Its ending freed its sandbox: B is admitted now.
  const b1 = await runText(KEY_B, 'b1', 'echo admitted');
  assert.equal(b1.status, 200);
  assert.equal(((await b1.json()) as JSONObject)['stdout'], 'admitted\n');
  // A cancelled run frees A's: A is admitted again.
  await cancel(KEY_A, a2);
  const a4 = await runText(KEY_A, 'a4', 'echo admitted');
  assert.equal(a4.status, 200);
  assert.equal(((await a4.json()) as JSONObject)['stdout'], 'admitted\n');

  await cancel(KEY_A, queued);
  await cancel(KEY_A, a1);
  await cancel(KEY_A, a3);
});

test('session caps: per tenant, then server-wide, with 429 + Retry-After; deleting one makes room', async () => {
  // Start clean: delete whatever the previous test left.
  for (const key of [KEY_A, KEY_B]) {
    for (const id of await sessionIDs(key)) {
      const res = await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE', headers: auth(key) });
      assert.equal(res.status, 204);
    }
  }
  const create = (key: string, id: string): Promise<Response> => postJSON(`${server.url}/api/sessions`, { id }, auth(key));
  for (const id of ['s1', 's2', 's3', 's4', 's5']) assert.equal((await create(KEY_A, id)).status, 201);
  await assertRateLimited(await create(KEY_A, 's6'), /SLUICE_MAX_SESSIONS_PER_TENANT/, 'A past its session cap');
  // A run on a new session id counts the same.
  await assertRateLimited(await runText(KEY_A, 's6', 'echo no'), /SLUICE_MAX_SESSIONS_PER_TENANT/, 'implicit session past the cap');
  for (const id of ['t1', 't2', 't3']) assert.equal((await create(KEY_B, id)).status, 201);
  // 8 sessions on the server: B, with 3 of its 5, meets the server-wide cap.
  await assertRateLimited(await create(KEY_B, 't4'), /SLUICE_MAX_SESSIONS\)/, 'server past its session cap');
  await assertRateLimited(await runText(KEY_B, 't4', 'echo no'), /SLUICE_MAX_SESSIONS\)/, 'implicit session past the server cap');
  assert.deepEqual(await sessionIDs(KEY_B), ['t1', 't2', 't3']);
  // Existing sessions still run, and stream normally.
  const inside = await start(KEY_B, 't1', 'for i in 0 1 2; do echo "line $i"; sleep 0.1; done');
  const insideEvents = await inside.events;
  assertContiguous(insideEvents);
  assert.equal(text(insideEvents, 'stdout'), 'line 0\nline 1\nline 2\n');

  const del = await fetch(`${server.url}/api/sessions/s5`, { method: 'DELETE', headers: auth(KEY_A) });
  assert.equal(del.status, 204);
  assert.equal((await create(KEY_B, 't4')).status, 201, 'room again after a delete');
  await assertRateLimited(await create(KEY_A, 's5'), /SLUICE_MAX_SESSIONS\)/, 'full again');
});
