/**
 * The error table end to end: every code that can arise without auth, with its one status, the
 * exact body `{error: {code, message}}`, and a message that names the field, what was expected
 * and what arrived. A refused request must leave nothing behind (no session, no workspace).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { ERROR_STATUS, isErrorCode, type ErrorCode } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { doneOf, postJSON, readSSE } from './helpers/client.js';

const BODY_LIMIT = 65536;
let server: TestServer;
before(async () => {
  // r and java are off (or not installed): the refusal of a known but unavailable language.
  server = await startServer({ SLUICE_MAX_QUEUE: '1', SLUICE_BODY_LIMIT: String(BODY_LIMIT), SLUICE_UID_COUNT: '16', SLUICE_LANGUAGES: 'python,javascript,typescript,bash' });
});
after(async () => {
  await server.stop();
});

/** Asserts the response is the contract's error body with `code` and its status; returns the message. */
async function expectError(res: Response, code: ErrorCode): Promise<string> {
  const raw = await res.text();
  return checkError(res.status, res.headers.get('content-type'), raw, code);
}

function checkError(status: number, contentType: string | null | undefined, raw: string, code: ErrorCode): string {
  assert.equal(status, ERROR_STATUS[code], `status for ${code}; body: ${raw}`);
  assert.match(contentType ?? '', /^application\/json/, `content-type of ${raw}`);
  const body: unknown = JSON.parse(raw);
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), raw);
  assert.deepEqual(Object.keys(body), ['error'], `exactly {error}: ${raw}`);
  const err: unknown = (body as Record<string, unknown>)['error'];
  assert.ok(typeof err === 'object' && err !== null && !Array.isArray(err), raw);
  assert.deepEqual(Object.keys(err).sort(), ['code', 'message'], `exactly {code, message}: ${raw}`);
  const e = err as Record<string, unknown>;
  assert.ok(isErrorCode(e['code']), raw);
  assert.equal(e['code'], code, raw);
  const message = e['message'];
  assert.equal(typeof message, 'string', raw);
  assert.ok(typeof message === 'string' && message.length > 0, raw);
  return String(message);
}

function assertMentions(message: string, parts: readonly string[]): void {
  for (const p of parts) assert.ok(message.includes(p), `message ${JSON.stringify(message)} should mention ${JSON.stringify(p)}`);
}

async function workspaceCount(): Promise<number> {
  return (await readdir(join(server.dataDir, 'workspaces'))).length;
}

async function sessionIDs(): Promise<string[]> {
  const res = await fetch(`${server.url}/api/sessions`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { sessions: { id: string }[] };
  return body.sessions.map((s) => s.id).sort();
}

async function assertNoSession(id: string): Promise<void> {
  const res = await fetch(`${server.url}/api/sessions/${id}`);
  assert.equal(res.status, 404, `session ${id} must not exist after a refused request`);
  await res.body?.cancel();
}

/**
 * A chunked POST through node:http (no Content-Length), one piece at a time. The server answers
 * 413 and closes as soon as the body passes the limit; pausing between pieces lets that answer
 * arrive before the next write, which would otherwise fail with EPIPE in node's client and hide it.
 */
interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}
function postChunked(url: string, pieces: readonly Buffer[]): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, agent: false });
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (t: string) => (body += t));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    void (async () => {
      for (const p of pieces) {
        if (answered || req.destroyed) return;
        req.write(p);
        await new Promise((r) => setTimeout(r, 15));
      }
      if (!answered && !req.destroyed) req.end();
    })();
  });
}

interface BadRequest {
  name: string;
  method?: string;
  /** Path under the server; `{sid}` becomes a fresh session id that must not exist afterwards. */
  path: string;
  /** Sent as JSON unless `raw` is given. */
  body?: unknown;
  raw?: string;
  code: ErrorCode;
  mentions: string[];
}

const RUN = '/api/sessions/{sid}/run';
const tooLong = 'a'.repeat(65);
const badRequests: BadRequest[] = [
  { name: 'malformed JSON', path: RUN, raw: '{"code": "print(1)",', code: 'INVALID_REQUEST', mentions: ['request body', 'expected JSON', 'malformed'] },
  { name: 'a body that is an array', path: RUN, body: [{ code: 'print(1)' }], code: 'INVALID_REQUEST', mentions: ['request body', 'a JSON object', 'an array'] },
  { name: 'a body that is a string', path: RUN, body: 'print(1)', code: 'INVALID_REQUEST', mentions: ['request body', 'a JSON object', '"print(1)" (string)'] },
  { name: 'an empty body', path: RUN, raw: '', code: 'INVALID_REQUEST', mentions: ['request body', 'a JSON object', 'nothing'] },
  { name: 'missing code', path: RUN, body: { language: 'python' }, code: 'INVALID_REQUEST', mentions: ['code', 'a string', 'required', 'nothing'] },
  { name: 'code that is not a string', path: RUN, body: { code: 42 }, code: 'INVALID_REQUEST', mentions: ['code', 'a string', '42 (number)'] },
  { name: 'timeout "abc"', path: RUN, body: { code: '', timeout: 'abc' }, code: 'INVALID_REQUEST', mentions: ['timeout', 'a number > 0', 'seconds', '"abc" (string)'] },
  { name: 'timeout -1', path: RUN, body: { code: '', timeout: -1 }, code: 'INVALID_REQUEST', mentions: ['timeout', 'a number > 0', '-1 (number)'] },
  { name: 'env name starting with a digit', path: RUN, body: { code: '', env: { '1X': 'a' } }, code: 'INVALID_REQUEST', mentions: ['env', 'not starting with a digit', '"1X"'] },
  { name: 'env value that is not a string', path: RUN, body: { code: '', env: { A: 1 } }, code: 'INVALID_REQUEST', mentions: ['env.A', 'a string', '1 (number)'] },
  { name: 'env that is not an object', path: RUN, body: { code: '', env: ['A=1'] }, code: 'INVALID_REQUEST', mentions: ['env', 'an object', 'an array'] },
  { name: 'mode "repl"', path: RUN, body: { code: '', mode: 'repl' }, code: 'INVALID_REQUEST', mentions: ['mode', '"process"', '"repl"'] },
  { name: 'on_disconnect "x"', path: RUN, body: { code: '', on_disconnect: 'x' }, code: 'INVALID_REQUEST', mentions: ['on_disconnect', '"continue"', '"cancel"', '"x"'] },
  { name: 'heartbeat 0', path: RUN, body: { code: '', heartbeat: 0 }, code: 'INVALID_REQUEST', mentions: ['heartbeat', '>= 1', '0 (number)'] },
  { name: 'unknown field timout', path: RUN, body: { code: '', timout: 5 }, code: 'INVALID_REQUEST', mentions: ['timout', 'unknown field', 'timeout'] },
  {
    name: 'mode "kernel" for bash (kernels are python and javascript)',
    path: RUN,
    body: { code: 'echo 1', language: 'bash', mode: 'kernel' },
    code: 'INVALID_REQUEST',
    mentions: ['mode', 'kernel', 'bash'],
  },
  {
    name: 'the same on /stream',
    path: '/api/sessions/{sid}/stream',
    body: { code: '', timeout: 'abc' },
    code: 'INVALID_REQUEST',
    mentions: ['timeout', 'a number > 0', '"abc" (string)'],
  },
  { name: 'create: limits.processes 0', path: '/api/sessions', body: { id: '{sid}', limits: { processes: 0 } }, code: 'INVALID_REQUEST', mentions: ['limits.processes', 'an integer >= 1', '0 (number)'] },
  { name: 'create: unknown limit memory', path: '/api/sessions', body: { id: '{sid}', limits: { memory: 1 } }, code: 'INVALID_REQUEST', mentions: ['limits.memory', 'unknown field', 'processes'] },
  { name: 'create: limits not an object', path: '/api/sessions', body: { id: '{sid}', limits: 5 }, code: 'INVALID_REQUEST', mentions: ['limits', 'a JSON object', '5 (number)'] },
  { name: 'create: unknown field', path: '/api/sessions', body: { id: '{sid}', idle_tll: 5 }, code: 'INVALID_REQUEST', mentions: ['idle_tll', 'unknown field', 'idle_ttl'] },
  { name: 'create: idle_ttl 0', path: '/api/sessions', body: { id: '{sid}', idle_ttl: 0 }, code: 'INVALID_REQUEST', mentions: ['idle_ttl', '> 0', '0 (number)'] },
  { name: 'create: network "yes"', path: '/api/sessions', body: { id: '{sid}', network: 'yes' }, code: 'INVALID_REQUEST', mentions: ['network', 'true or false', '"yes" (string)'] },
  { name: 'create: a body that is an array', path: '/api/sessions', body: [], code: 'INVALID_REQUEST', mentions: ['request body', 'a JSON object', 'an array'] },
  { name: 'create: language cobol', path: '/api/sessions', body: { id: '{sid}', language: 'cobol' }, code: 'UNSUPPORTED_LANGUAGE', mentions: ['language', 'python', '"cobol"'] },
  { name: 'create: network true on a server without network', path: '/api/sessions', body: { id: '{sid}', network: true }, code: 'FORBIDDEN', mentions: ['network', 'does not allow'] },
  { name: 'run: language cobol', path: RUN, body: { code: 'x', language: 'cobol' }, code: 'UNSUPPORTED_LANGUAGE', mentions: ['language', 'python', '"cobol"'] },
];

let seq = 0;
for (const row of badRequests) {
  test(`${row.code} ${ERROR_STATUS[row.code]}: ${row.name}; nothing is created`, async () => {
    const sid = `refused-${++seq}`;
    const path = row.path.replace('{sid}', sid);
    const before = await workspaceCount();
    const bodyText = row.raw ?? JSON.stringify(row.body).replaceAll('{sid}', sid);
    const res = await fetch(`${server.url}${path}`, {
      method: row.method ?? 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodyText,
    });
    assertMentions(await expectError(res, row.code), row.mentions);
    await assertNoSession(sid);
    assert.equal(await workspaceCount(), before, 'no workspace was created');
  });
}

test('INVALID_REQUEST 400: invalid session ids in the path, for run, stream, GET and DELETE', async () => {
  const sessionsBefore = await sessionIDs();
  const workspacesBefore = await workspaceCount();
  const cases: { path: string; shown: string }[] = [
    { path: tooLong, shown: `"${'a'.repeat(40)}…"` },
    { path: 'a.b', shown: '"a.b"' },
    { path: 'a%20b', shown: '"a b"' },
    { path: 'a%2Fb', shown: '"a/b"' },
    { path: 'caf%C3%A9', shown: '"café"' },
  ];
  for (const c of cases) {
    const requests: [string, string][] = [
      ['POST', `/api/sessions/${c.path}/run`],
      ['POST', `/api/sessions/${c.path}/stream`],
      ['GET', `/api/sessions/${c.path}`],
      ['DELETE', `/api/sessions/${c.path}`],
    ];
    for (const [method, path] of requests) {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: JSON.stringify({ code: 'print(1)' }) } : {}),
      });
      const message = await expectError(res, 'INVALID_REQUEST');
      assertMentions(message, ['session id', 'letters, digits', '1 to 64 characters', c.shown]);
    }
  }
  // A 64-character id is the longest valid one.
  const longest = 'b'.repeat(64);
  const ok = await postJSON(`${server.url}/api/sessions`, { id: longest });
  assert.equal(ok.status, 201);
  await ok.body?.cancel();
  assert.equal((await fetch(`${server.url}/api/sessions/${longest}`, { method: 'DELETE' })).status, 204);
  assert.deepEqual(await sessionIDs(), sessionsBefore, 'no session was created by a refused id');
  assert.equal(await workspaceCount(), workspacesBefore);
});

test('INVALID_REQUEST 400: an invalid id in the create body', async () => {
  for (const [id, shown] of [
    [tooLong, `"${'a'.repeat(40)}…"`],
    ['a.b', '"a.b"'],
  ] as const) {
    const res = await postJSON(`${server.url}/api/sessions`, { id });
    assertMentions(await expectError(res, 'INVALID_REQUEST'), ['id', '1 to 64 characters', shown]);
  }
  const empty = await postJSON(`${server.url}/api/sessions`, { id: '' });
  assertMentions(await expectError(empty, 'INVALID_REQUEST'), ['id', 'non-empty', '""']);
  const res = await postJSON(`${server.url}/api/sessions`, { id: 7 });
  assertMentions(await expectError(res, 'INVALID_REQUEST'), ['id', 'string', '7 (number)']);
});

test('INVALID_REQUEST 400: creating a session whose id exists, and the existing one is untouched', async () => {
  const first = await postJSON(`${server.url}/api/sessions`, { id: 'dup', env: { KEEP: 'me' } });
  assert.equal(first.status, 201);
  await first.body?.cancel();
  const again = await postJSON(`${server.url}/api/sessions`, { id: 'dup' });
  assertMentions(await expectError(again, 'INVALID_REQUEST'), ['id', '"dup"', 'already exists']);
  const got = await fetch(`${server.url}/api/sessions/dup`);
  assert.equal(got.status, 200);
  const s = (await got.json()) as Record<string, unknown>;
  assert.deepEqual(s['env_keys'], ['KEEP']);
  assert.equal((await fetch(`${server.url}/api/sessions/dup`, { method: 'DELETE' })).status, 204);
});

test('INVALID_REQUEST 400: ?from=abc and a bad Last-Event-ID on /events, a bad Idempotency-Key on /run', async () => {
  const run = await postJSON(`${server.url}/api/sessions/events-bad/run`, { code: 'print(1)' });
  assert.equal(run.status, 200);
  const { execution_id: id } = (await run.json()) as { execution_id: string };
  for (const from of ['abc', '-1', '1.5']) {
    const res = await fetch(`${server.url}/api/executions/${id}/events?from=${from}`);
    assertMentions(await expectError(res, 'INVALID_REQUEST'), ['from', 'integer', JSON.stringify(from)]);
  }
  const lei = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': 'xyz' } });
  assertMentions(await expectError(lei, 'INVALID_REQUEST'), ['Last-Event-ID', 'integer', '"xyz"']);
  const key = await postJSON(`${server.url}/api/sessions/events-bad/run`, { code: 'print(2)' }, { 'idempotency-key': 'k'.repeat(256) });
  assertMentions(await expectError(key, 'INVALID_REQUEST'), ['Idempotency-Key', '1 to 255 characters', '256']);
  assert.equal((await fetch(`${server.url}/api/sessions/events-bad`, { method: 'DELETE' })).status, 204);
});

test('NOT_FOUND 404: unknown session, execution and route', async () => {
  const missingExec = '00000000-0000-4000-8000-000000000000';
  const cases: [string, string, string[]][] = [
    ['GET', '/api/sessions/nobody-here', ['session', '"nobody-here"']],
    ['DELETE', '/api/sessions/nobody-here', ['session', '"nobody-here"']],
    ['GET', `/api/executions/${missingExec}`, ['execution', `"${missingExec}"`]],
    ['GET', `/api/executions/${missingExec}/events`, ['execution', `"${missingExec}"`]],
    ['POST', `/api/executions/${missingExec}/cancel`, ['execution', `"${missingExec}"`]],
    ['GET', '/api/nope', ['GET', '/api/nope']],
    ['POST', '/api/sessions/abc/explode', ['POST', '/api/sessions/abc/explode']],
    ['GET', '/api/sessions/abc/run?x=1', ['GET', '/api/sessions/abc/run']],
  ];
  for (const [method, path, mentions] of cases) {
    const res = await fetch(`${server.url}${path}`, { method });
    assertMentions(await expectError(res, 'NOT_FOUND'), mentions);
  }
  await assertNoSession('abc');
});

test('SESSION_BUSY 409: past the queue bound (SLUICE_MAX_QUEUE=1) with Retry-After; the queue frees after cancel', async () => {
  const url = `${server.url}/api/sessions/busy/stream`;
  const body = { language: 'bash', code: 'sleep 30' };
  // Await each response's head: by then the execution is in the queue, so arrival order is fixed.
  const running = await postJSON(url, body);
  assert.equal(running.status, 200);
  const queued = await postJSON(url, body);
  assert.equal(queued.status, 200);
  const ids = [running.headers.get('sluice-execution-id'), queued.headers.get('sluice-execution-id')];
  const readers = [readSSE(running), readSSE(queued)];
  try {
    const third = await postJSON(`${server.url}/api/sessions/busy/run`, { language: 'bash', code: 'echo never' });
    const retryAfter = third.headers.get('retry-after');
    assertMentions(await expectError(third, 'SESSION_BUSY'), ['"busy"', '1 more are queued', 'limit']);
    assert.match(retryAfter ?? '', /^\d+$/, `Retry-After is a number of seconds, got ${String(retryAfter)}`);
    assert.ok(Number(retryAfter) >= 1);
    const view = (await (await fetch(`${server.url}/api/sessions/busy`)).json()) as Record<string, unknown>;
    assert.equal(view['state'], 'running');
    assert.equal(view['queued'], 1);
    assert.equal(view['executions'], 2, 'the refused run was not counted');
  } finally {
    for (const id of ids) {
      assert.ok(id);
      const c = await fetch(`${server.url}/api/executions/${id}/cancel`, { method: 'POST' });
      assert.equal(c.status, 202);
      await c.body?.cancel();
    }
  }
  const [first, second] = await Promise.all(readers);
  assert.ok(first && second);
  assert.equal(doneOf(first).reason, 'cancelled');
  assert.equal(doneOf(second).reason, 'cancelled');
  assert.ok(!second.some((e) => e.type === 'start'), 'the queued execution never started');
  const now = await postJSON(`${server.url}/api/sessions/busy/run`, { language: 'bash', code: 'echo free' });
  assert.equal(now.status, 200);
  assert.equal(((await now.json()) as Record<string, unknown>)['stdout'], 'free\n');
  assert.equal((await fetch(`${server.url}/api/sessions/busy`, { method: 'DELETE' })).status, 204);
});

test('PAYLOAD_TOO_LARGE 413: 200 KB over a 64 KiB limit, with Content-Length and chunked; the server stays healthy', async () => {
  const json = Buffer.from(JSON.stringify({ code: `# ${'x'.repeat(200 * 1024)}\nprint(1)` }));
  const pieces: Buffer[] = [];
  for (let i = 0; i < json.length; i += 8192) pieces.push(json.subarray(i, i + 8192));
  const url = `${server.url}/api/sessions/too-big/run`;

  // fetch sends a byte body with a Content-Length header.
  const withLength = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
  const lengthMessage = await expectError(withLength, 'PAYLOAD_TOO_LARGE');
  const chunked = await postChunked(url, pieces);
  const chunkedMessage = checkError(chunked.status, chunked.headers['content-type'], chunked.body, 'PAYLOAD_TOO_LARGE');
  await assertNoSession('too-big');

  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  // Just under the limit still runs.
  const fits = await postJSON(url, { code: `# ${'y'.repeat(60 * 1024)}\nprint("fits")` });
  assert.equal(fits.status, 200);
  assert.equal(((await fits.json()) as Record<string, unknown>)['stdout'], 'fits\n');
  assert.equal((await fetch(`${server.url}/api/sessions/too-big`, { method: 'DELETE' })).status, 204);

  // The message names the limit, so the client knows how much to cut.
  for (const message of [lengthMessage, chunkedMessage]) assertMentions(message, ['request body', `at most ${BODY_LIMIT} bytes`]);
});

test('UNSUPPORTED_LANGUAGE 422: an unknown language lists the installed ones; a known but unavailable one says why', async () => {
  const res = await fetch(`${server.url}/api/languages`);
  const { languages } = (await res.json()) as { languages: { language: string; installed: boolean; reason: string | null }[] };
  const installed = languages.filter((l) => l.installed).map((l) => l.language);
  assert.ok(installed.includes('python') && installed.includes('bash'), `installed: ${installed.join(', ')}`);

  const cobol = await postJSON(`${server.url}/api/sessions/lang-cobol/run`, { code: 'DISPLAY 1', language: 'cobol' });
  assertMentions(await expectError(cobol, 'UNSUPPORTED_LANGUAGE'), ['language', '"cobol"', ...installed]);
  await assertNoSession('lang-cobol');

  const unavailable = languages.filter((l) => ['r', 'java', 'typescript'].includes(l.language) && !l.installed);
  assert.ok(unavailable.length > 0, 'r and java are not available on this server (SLUICE_LANGUAGES)');
  for (const l of unavailable) {
    assert.ok(l.reason, `GET /api/languages gives a reason for ${l.language}`);
    const sid = `lang-${l.language}`;
    const r = await postJSON(`${server.url}/api/sessions/${sid}/run`, { code: '1', language: l.language });
    assertMentions(await expectError(r, 'UNSUPPORTED_LANGUAGE'), ['language', l.language, l.reason]);
    await assertNoSession(sid);
    const create = await postJSON(`${server.url}/api/sessions`, { id: sid, language: l.language });
    assertMentions(await expectError(create, 'UNSUPPORTED_LANGUAGE'), ['language', l.language, l.reason]);
    await assertNoSession(sid);
  }
});

test('FORBIDDEN 403: network true when the server does not allow network, on create only', async () => {
  const res = await postJSON(`${server.url}/api/sessions`, { id: 'wants-net', network: true });
  assertMentions(await expectError(res, 'FORBIDDEN'), ['network', 'SLUICE_ALLOW_NETWORK']);
  await assertNoSession('wants-net');
  const off = await postJSON(`${server.url}/api/sessions`, { id: 'wants-net', network: false });
  assert.equal(off.status, 201);
  await off.body?.cancel();
  assert.equal((await fetch(`${server.url}/api/sessions/wants-net`, { method: 'DELETE' })).status, 204);
});

test('RATE_LIMITED 429: past the server\'s session capacity (SLUICE_UID_COUNT=16, one host uid per session)', { skip: process.getuid?.() !== 0 ? 'host uids are per session only when the server runs as root' : false }, async () => {
  const created: string[] = [];
  try {
    let refused: Response | undefined;
    for (let i = 0; i < 17 && !refused; i++) {
      const res = await postJSON(`${server.url}/api/sessions`, { id: `cap-${i}` });
      if (res.status === 201) {
        created.push(`cap-${i}`);
        await res.body?.cancel();
      } else refused = res;
    }
    assert.ok(refused, 'a session past the capacity is refused');
    const retryAfter = refused.headers.get('retry-after');
    assertMentions(await expectError(refused, 'RATE_LIMITED'), ['sessions', 'maximum']);
    assert.match(retryAfter ?? '', /^\d+$/);
    assert.ok(created.length >= 1 && created.length <= 16);
  } finally {
    for (const id of created) await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' });
  }
  // Capacity comes back when sessions go.
  const again = await postJSON(`${server.url}/api/sessions`, { id: 'cap-again' });
  assert.equal(again.status, 201);
  await again.body?.cancel();
  assert.equal((await fetch(`${server.url}/api/sessions/cap-again`, { method: 'DELETE' })).status, 204);
});

// UNAUTHORIZED 401 is tested with keys in hostile/tenants.test.ts. Not reachable from outside
// on a healthy server:
// - SANDBOX_UNAVAILABLE 503 needs the sandbox self-check to fail (bubblewrap broken on the host).
// - INTERNAL 500 needs a server fault; there is no request that causes one on purpose.
test.skip('SANDBOX_UNAVAILABLE 503: needs a host where bubblewrap cannot start a sandbox');
test.skip('INTERNAL 500: needs a server fault that no valid or invalid request triggers');

test('curl -d style bodies (form-urlencoded or no Content-Type, but JSON text) are read as JSON', async () => {
  const contentTypes = ['application/x-www-form-urlencoded', 'text/plain', null];
  for (const ct of contentTypes) {
    const res = await fetch(`${server.url}/api/sessions/curl-style/run`, {
      method: 'POST',
      headers: ct === null ? {} : { 'content-type': ct },
      body: JSON.stringify({ code: 'print(6 * 7)' }),
    });
    assert.equal(res.status, 200, `content-type ${String(ct)}: ${res.status}`);
    assert.equal(((await res.json()) as Record<string, unknown>)['stdout'], '42\n');
  }
  // And malformed text under that content type is still a JSON error.
  const bad = await fetch(`${server.url}/api/sessions/curl-style/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'code=print(1)',
  });
  assertMentions(await expectError(bad, 'INVALID_REQUEST'), ['request body', 'expected JSON']);
  assert.equal((await fetch(`${server.url}/api/sessions/curl-style`, { method: 'DELETE' })).status, 204);
});

test('every answer names its request: a client X-Request-Id comes back (streams too), otherwise one is made up', async () => {
  const given = await fetch(`${server.url}/api/sessions/rid-missing`, { headers: { 'x-request-id': 'client-42' } });
  assert.equal(given.status, 404);
  assert.equal(given.headers.get('x-request-id'), 'client-42');
  await given.body?.cancel();
  const made = await fetch(`${server.url}/api/sessions/rid-missing`, { headers: { 'x-request-id': 'not a valid id' } });
  assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f]{24}$/);
  await made.body?.cancel();
  const streamed = await postJSON(`${server.url}/api/sessions/rid-stream/stream`, { code: 'echo', language: 'bash' }, { 'x-request-id': 'stream-7' });
  assert.equal(streamed.headers.get('x-request-id'), 'stream-7');
  await streamed.text();
});
