/**
 * Tenants end to end: with API keys every request needs `Authorization: Bearer <key>` (401
 * UNAUTHORIZED with `WWW-Authenticate` otherwise, `/healthz` excepted); each key sees only its
 * own sessions and executions, and another tenant's ids answer exactly like ids that do not
 * exist; the same session id names a separate session (and workspace) per tenant; keys come
 * from SLUICE_API_KEYS and SLUICE_API_KEYS_FILE; generated ids carry 128 random bits; and a
 * server without keys refuses to listen beyond loopback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, startServer, type TestServer } from '../helpers/server.js';
import { assertContiguous, doneOf, postJSON, readSSE, text, type Timed } from '../helpers/client.js';

const KEY_A = `alice-${randomBytes(24).toString('hex')}`;
const KEY_B = randomBytes(32).toString('base64url');
const KEY_C = `carol-${randomBytes(24).toString('hex')}`;
/** In the keys file, but commented out: must not work. */
const KEY_OFF = `off-${randomBytes(24).toString('hex')}`;
const UID_BASE = 7_000_000 + randomInt(0, 50_000) * 64;

let server: TestServer;
let keysDir: string;
before(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'sluice-keys-'));
  const keysFile = join(keysDir, 'keys');
  await writeFile(keysFile, `# tenants of this test\n\ncarol:${KEY_C}\n# ${KEY_OFF}\n`, { mode: 0o600 });
  server = await startServer({
    SLUICE_API_KEYS: `alice:${KEY_A},${KEY_B}`,
    SLUICE_API_KEYS_FILE: keysFile,
    SLUICE_UID_BASE: String(UID_BASE),
    SLUICE_UID_COUNT: '64',
    SLUICE_MAX_SESSIONS_PER_TENANT: '64',
  });
});
after(async () => {
  await server?.stop();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

type JSONObject = Record<string, unknown>;

/** Requests as one tenant (or as nobody, with `key` null). */
function as(key: string | null) {
  const auth: Record<string, string> = key === null ? {} : { authorization: `Bearer ${key}` };
  const send = (method: string, path: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${server.url}${path}`, { method, headers: { ...auth, ...headers } });
  return {
    get: (path: string, headers: Record<string, string> = {}) => send('GET', path, headers),
    delete: (path: string) => send('DELETE', path),
    post: (path: string, body?: unknown, headers: Record<string, string> = {}) =>
      body === undefined ? send('POST', path, headers) : postJSON(`${server.url}${path}`, body, { ...auth, ...headers }),
    /** Runs bash code and returns the buffered answer, asserting 200. */
    async run(session: string, code: string, headers: Record<string, string> = {}): Promise<JSONObject> {
      const res = await postJSON(`${server.url}/api/sessions/${session}/run`, { code, language: 'bash' }, { ...auth, ...headers });
      const body = (await res.json()) as JSONObject;
      assert.equal(res.status, 200, `run answered ${res.status}: ${JSON.stringify(body)}`);
      return body;
    },
    /** Starts an SSE run; resolves once the headers are in. */
    async stream(session: string, body: JSONObject): Promise<{ id: string; events: Promise<Timed[]> }> {
      const res = await postJSON(`${server.url}/api/sessions/${session}/stream`, body, auth);
      assert.equal(res.status, 200, `stream answered ${res.status}`);
      const id = res.headers.get('sluice-execution-id');
      assert.ok(id);
      const events = readSSE(res);
      events.catch(() => {});
      return { id, events };
    },
  };
}

const alice = as(KEY_A);
const bob = as(KEY_B);

async function errorOf(res: Response): Promise<{ status: number; code: unknown; message: unknown }> {
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  return { status: res.status, code: body.error?.code, message: body.error?.message };
}

/** Asserts `res` is the same 404 a made-up id of the same kind gets (with the id swapped). */
async function assertSameAsMissing(res: Response, missing: Response, id: string, fakeID: string, what: string): Promise<void> {
  const got = await errorOf(res);
  const ref = await errorOf(missing);
  assert.equal(got.status, 404, `${what}: ${JSON.stringify(got)}`);
  assert.equal(got.code, 'NOT_FOUND', what);
  assert.deepEqual({ ...got, message: String(got.message).replace(id, fakeID) }, ref, `${what}: answered like a missing id`);
}

/** A ticking program streamed by a well-behaved tenant: every tick arrives, in order, done last. */
async function assertBystanderStreams(key: string, session: string): Promise<void> {
  const { events } = await as(key).stream(session, { code: 'for i in 0 1 2 3 4; do echo "tick $i"; sleep 0.1; done', language: 'bash' });
  const all = await events;
  assertContiguous(all);
  assert.equal(text(all, 'stdout'), 'tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n');
  assert.equal(doneOf(all).reason, 'exited');
}

test('no key, a wrong key or another scheme: 401 UNAUTHORIZED with WWW-Authenticate; /healthz stays open', async () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['no header', {}, /^Bearer realm="sluice"$/],
    ['wrong key', { authorization: `Bearer ${KEY_A}x` }, /error="invalid_token"/],
    ['commented-out key', { authorization: `Bearer ${KEY_OFF}` }, /error="invalid_token"/],
    ['Basic scheme', { authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` }, /error="invalid_request"/],
    ['Bearer without a key', { authorization: 'Bearer' }, /error="invalid_request"/],
  ];
  for (const path of ['/api/sessions', '/api/languages', '/api/executions/x', '/no/such/route', '/']) {
    for (const [what, headers, challenge] of cases) {
      const res = await fetch(`${server.url}${path}`, { headers });
      assert.equal(res.status, 401, `${what} on ${path}`);
      assert.match(res.headers.get('www-authenticate') ?? '', challenge, `${what} on ${path}`);
      const err = await errorOf(res);
      assert.equal(err.code, 'UNAUTHORIZED');
      assert.match(String(err.message), /^Authorization: /);
      assert.ok(!String(err.message).includes(KEY_A), 'the key is not echoed');
    }
  }
  // A run without a key is refused before anything is created or run.
  const refused = await as(null).post('/api/sessions/nokey/run', { code: 'echo ran' });
  assert.equal((await errorOf(refused)).status, 401);
  assert.equal((await alice.get('/api/sessions/nokey')).status, 404);

  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' }, 'healthz tells strangers nothing about tenants');
  const languages = await alice.get('/api/languages');
  assert.equal(languages.status, 200);
  assert.ok(Array.isArray(((await languages.json()) as JSONObject)['languages']));
  // The file's key works, names or not.
  const carol = await as(KEY_C).get('/api/sessions');
  assert.equal(carol.status, 200);
  assert.deepEqual(await carol.json(), { sessions: [] });
});

test("another tenant gets 404 for everything of A's, exactly like ids that do not exist, and never touches it", async () => {
  const secret = `secret-${randomBytes(8).toString('hex')}`;
  const wrote = await alice.run('shared', `echo ${secret} > a-secret.txt; echo ok`);
  assert.equal(wrote['stdout'], 'ok\n');
  const finishedID = String(wrote['execution_id']);
  const long = await alice.stream('a-long', { code: 'echo up; sleep 20; echo finished', language: 'bash' });

  const fakeSession = `nope-${randomBytes(4).toString('hex')}`;
  const fakeExec = randomBytes(16).toString('hex');
  // Sessions: inspect, delete, list.
  await assertSameAsMissing(await bob.get('/api/sessions/shared'), await bob.get(`/api/sessions/${fakeSession}`), 'shared', fakeSession, 'GET session');
  await assertSameAsMissing(await bob.delete('/api/sessions/a-long'), await bob.delete(`/api/sessions/${fakeSession}`), 'a-long', fakeSession, 'DELETE session');
  assert.deepEqual(await (await bob.get('/api/sessions')).json(), { sessions: [] });
  // Executions, finished and running: state, events (from the start and resumed), cancel.
  for (const id of [finishedID, long.id]) {
    await assertSameAsMissing(await bob.get(`/api/executions/${id}`), await bob.get(`/api/executions/${fakeExec}`), id, fakeExec, 'GET execution');
    await assertSameAsMissing(await bob.get(`/api/executions/${id}/events`), await bob.get(`/api/executions/${fakeExec}/events`), id, fakeExec, 'GET events');
    await assertSameAsMissing(
      await bob.get(`/api/executions/${id}/events`, { 'last-event-id': '1' }),
      await bob.get(`/api/executions/${fakeExec}/events`, { 'last-event-id': '1' }),
      id,
      fakeExec,
      'GET events with Last-Event-ID',
    );
    await assertSameAsMissing(await bob.post(`/api/executions/${id}/cancel`), await bob.post(`/api/executions/${fakeExec}/cancel`), id, fakeExec, 'POST cancel');
  }
  // A third tenant (from the keys file) is just as blind.
  assert.equal((await as(KEY_C).get(`/api/executions/${long.id}`)).status, 404);

  // B's failed attempts changed nothing of A's: the session is there and still running.
  const still = (await (await alice.get(`/api/executions/${long.id}`)).json()) as JSONObject;
  assert.equal(still['state'], 'running');
  assert.equal((await alice.get('/api/sessions/a-long')).status, 200);

  // A run by B on A's session id makes B's own session, with its own empty workspace.
  const bobs = await bob.run('shared', 'ls -A; test -e a-secret.txt && echo LEAK; echo bob > b.txt; echo done');
  assert.equal(bobs['stdout'], 'done\n', `B's workspace is empty: ${JSON.stringify(bobs)}`);
  const bobList = (await (await bob.get('/api/sessions')).json()) as { sessions: JSONObject[] };
  assert.deepEqual(bobList.sessions.map((s) => s['id']), ['shared']);
  // B's execution is B's: A cannot see it either.
  assert.equal((await alice.get(`/api/executions/${String(bobs['execution_id'])}`)).status, 404);
  // A's workspace is untouched by B's run, and B's file is not in it.
  const again = await alice.run('shared', 'cat a-secret.txt; test -e b.txt && echo LEAK; true');
  assert.equal(again['stdout'], `${secret}\n`);
  const aliceList = (await (await alice.get('/api/sessions')).json()) as { sessions: JSONObject[] };
  assert.deepEqual(aliceList.sessions.map((s) => s['id']).sort(), ['a-long', 'shared']);

  // The same Idempotency-Key from two tenants names two executions.
  const idem = `idem-${randomBytes(6).toString('hex')}`;
  const first = await alice.run('idem', 'echo alice', { 'idempotency-key': idem });
  const second = await bob.run('idem', 'echo bob', { 'idempotency-key': idem });
  assert.equal(first['stdout'], 'alice\n');
  assert.equal(second['stdout'], 'bob\n');
  assert.notEqual(first['execution_id'], second['execution_id']);

  // B deleting its own "shared" leaves A's.
  assert.equal((await bob.delete('/api/sessions/shared')).status, 204);
  assert.equal((await alice.run('shared', 'cat a-secret.txt'))['stdout'], `${secret}\n`);

  // Beside all this, A's long run went on untouched and a well-behaved tenant streams normally.
  await assertBystanderStreams(KEY_C, 'bystander');
  const cancelled = await alice.post(`/api/executions/${long.id}/cancel`);
  assert.equal(cancelled.status, 202);
  const events = await long.events;
  assertContiguous(events);
  assert.equal(text(events, 'stdout'), 'up\n');
  assert.equal(doneOf(events).reason, 'cancelled');
});

test('generated session and execution ids are 128-bit random: 32 hex digits, unique, no fixed bits', async () => {
  const sessionIDs: string[] = [];
  const executionIDs: string[] = [];
  for (let i = 0; i < 40; i++) {
    const res = await bob.post('/api/sessions', {});
    assert.equal(res.status, 201);
    const id = String(((await res.json()) as JSONObject)['id']);
    sessionIDs.push(id);
    const r = await bob.run(id, 'true');
    executionIDs.push(String(r['execution_id']));
    assert.equal((await bob.delete(`/api/sessions/${id}`)).status, 204);
  }
  for (const [what, ids] of [['session', sessionIDs], ['execution', executionIDs]] as const) {
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/, `${what} id ${id}`);
    assert.equal(new Set(ids).size, ids.length, `${what} ids are unique`);
    // A v4 UUID fixes 6 of its 128 bits; here every bit takes both values across the sample.
    for (let bit = 0; bit < 128; bit++) {
      const values = new Set(ids.map((id) => (parseInt(id[bit >> 2] ?? '0', 16) >> (3 - (bit & 3))) & 1));
      assert.equal(values.size, 2, `${what} ids: bit ${bit} never varies`);
    }
  }
});

test('without API keys the server refuses to listen beyond loopback, says why, and touches nothing', async () => {
  for (const host of ['0.0.0.0', '::']) {
    const dataDir = join(tmpdir(), `sluice-refused-${randomBytes(6).toString('hex')}`);
    const proc = spawn(process.execPath, [CLI, 'serve', '--host', host, '--port', '0', '--data-dir', dataDir], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.setEncoding('utf8').on('data', (t: string) => (output += t));
    proc.stderr.setEncoding('utf8').on('data', (t: string) => (output += t));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`serve --host ${host} without keys did not exit in 10 s:\n${output}`));
      }, 10_000);
      proc.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 1, `exit status (output: ${output})`);
    assert.match(output, new RegExp(`refusing to listen on ${host.replace(/\./g, '\\.')} without API keys`));
    assert.match(output, /SLUICE_API_KEYS/);
    assert.match(output, /--insecure-no-auth/);
    assert.doesNotMatch(output, /listening on/);
    await assert.rejects(stat(dataDir), { code: 'ENOENT' }, 'refused before creating its data dir');
  }
  // The keyed server beside it never noticed.
  await assertBystanderStreams(KEY_A, 'after-refusal');
});
