/**
 * Edges a hostile client finds: what Fastify rejects before a route runs answers in the
 * contract's error shape; limits too small for any sandbox, and sub-second heartbeats, are
 * refused naming the bound (and a session at every minimum at once still runs code); an
 * Idempotency-Key reused for a different request is refused rather than answered with the
 * first run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { ERROR_STATUS, isErrorCode, MIN_HEARTBEAT_SEC, SESSION_LIMIT_MINIMUMS } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_UID_BASE: String(randomInt(2_000_000, 3_000_000)) });
});
after(async () => {
  await server.stop();
});

/** Asserts the contract's error answer: the code's status and exactly `{error: {code, message}}`; returns the message. */
async function expectError(res: Response, code: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, isErrorCode(code) ? ERROR_STATUS[code] : -1, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error'], text);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'], text);
  assert.equal(body.error.code, code, text);
  assert.equal(typeof body.error.message, 'string');
  return body.error.message;
}

/** Sends raw bytes as one HTTP request and returns the answer's status line and body. */
async function rawRequest(request: string): Promise<Response> {
  const { hostname, port } = new URL(server.url);
  const socket = connect(Number(port), hostname);
  socket.end(request);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split).split('\r\n');
  const headers = new Headers();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return new Response(text.slice(split + 4), { status: Number(head[0]?.split(' ')[1]), headers });
}

test('errors Fastify raises before a route runs answer in the contract shape', async (t) => {
  const u = server.url;
  const cases: { name: string; res: () => Promise<Response>; code: string; mentions: RegExp }[] = [
    { name: 'bad percent-escape in a session path', res: () => fetch(`${u}/api/sessions/%FF`), code: 'INVALID_REQUEST', mentions: /^URL: expected UTF-8 percent-escapes.*%FF/ },
    { name: 'bad percent-escape in a file path', res: () => fetch(`${u}/api/sessions/s/files/a%E0%A4`), code: 'INVALID_REQUEST', mentions: /^URL: expected UTF-8/ },
    {
      name: 'bad percent-escape on a connection that sent it verbatim',
      res: () => rawRequest('GET /api/executions/%C0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      code: 'INVALID_REQUEST',
      mentions: /^URL: /,
    },
    { name: 'a path parameter past Fastify\'s length', res: () => fetch(`${u}/api/executions/${'e'.repeat(300)}`), code: 'INVALID_REQUEST', mentions: /^URL: a path parameter .* is too long/ },
    { name: 'malformed JSON', res: () => fetch(`${u}/api/sessions`, { method: 'POST', body: '{"id":' }), code: 'INVALID_REQUEST', mentions: /^request body: expected JSON/ },
    {
      name: 'a Content-Type that is not a media type',
      res: () => fetch(`${u}/api/sessions`, { method: 'POST', body: '{}', headers: { 'content-type': 'nonsense' } }),
      code: 'INVALID_REQUEST',
      mentions: /^Content-Type: expected a media type .*"nonsense"/,
    },
    {
      name: 'an upload with a Content-Type that is not a media type',
      res: () => fetch(`${u}/api/sessions/s/files/a.txt`, { method: 'PUT', body: 'x', headers: { 'content-type': 'x' } }),
      code: 'INVALID_REQUEST',
      mentions: /^Content-Type: /,
    },
    {
      name: 'a body over the limit',
      res: () => fetch(`${u}/api/sessions`, { method: 'POST', body: 'x'.repeat(3 * 1024 * 1024) }),
      code: 'PAYLOAD_TOO_LARGE',
      mentions: /SLUICE_BODY_LIMIT/,
    },
    { name: 'an unknown route', res: () => fetch(`${u}/api/nothing-here`), code: 'NOT_FOUND', mentions: /^no route for GET \/api\/nothing-here/ },
    { name: 'an unknown method', res: () => fetch(`${u}/api/sessions`, { method: 'PATCH' }), code: 'NOT_FOUND', mentions: /^no route for PATCH/ },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      assert.match(await expectError(await c.res(), c.code), c.mentions);
    });
  }
});

test('limits.processes 1 is refused naming the minimum; so is each limit below the least a sandbox needs', async () => {
  const one = await postJSON(`${server.url}/api/sessions`, { id: `procs-${randomUUID().slice(0, 8)}`, limits: { processes: 1 } });
  assert.match(await expectError(one, 'INVALID_REQUEST'), /^limits\.processes: expected an integer >= 16 \(tasks; no sandbox can start with less\), got 1 \(number\)/);
  for (const [key, min] of Object.entries(SESSION_LIMIT_MINIMUMS)) {
    const res = await postJSON(`${server.url}/api/sessions`, { limits: { [key]: min - 1 } });
    assert.match(await expectError(res, 'INVALID_REQUEST'), new RegExp(`^limits\\.${key}: expected an integer >= ${min} `));
  }
  assert.equal((await (await fetch(`${server.url}/api/sessions`)).json() as { sessions?: unknown[] }).sessions?.length ?? 0, 0, 'no session was created');
});

test('a session at every minimum at once still runs python, bash and both kernels', async () => {
  const id = `minimal-${randomUUID().slice(0, 8)}`;
  const created = await postJSON(`${server.url}/api/sessions`, { id, limits: SESSION_LIMIT_MINIMUMS });
  assert.equal(created.status, 201, await created.text());
  const runs = [
    { language: 'python', mode: 'process', code: 'print(1)' },
    { language: 'bash', mode: 'process', code: 'echo 1' },
    { language: 'python', mode: 'kernel', code: 'print(1)' },
    { language: 'javascript', mode: 'kernel', code: 'console.log(1)' },
  ];
  for (const body of runs) {
    const res = await postJSON(`${server.url}/api/sessions/${id}/run`, { ...body, timeout: 30 });
    const got = (await res.json()) as { stdout: string; stderr: string; exit_code: number; reason: string };
    assert.equal(res.status, 200);
    assert.deepEqual([got.stdout, got.exit_code, got.reason], ['1\n', 0, 'exited'], `${body.language} ${body.mode}: ${got.stderr}`);
  }
});

test('a heartbeat below one second is refused naming the bound', async () => {
  const res = await postJSON(`${server.url}/api/sessions/heartbeat-floor/stream`, { code: 'print(1)', heartbeat: 1e-6 });
  assert.match(await expectError(res, 'INVALID_REQUEST'), new RegExp(`^heartbeat: expected a number >= ${MIN_HEARTBEAT_SEC} `));
});

test('an Idempotency-Key reused for a different request is refused; the same request still replays', async () => {
  const key = `key-${randomUUID()}`;
  const body = { language: 'bash', code: 'echo ran >> runs.txt; wc -l < runs.txt', env: { A: '1', B: '2' } };
  const first = await postJSON(`${server.url}/api/sessions/idem-a/run`, body, { 'idempotency-key': key });
  assert.equal(first.status, 200);
  const firstID = ((await first.json()) as { execution_id: string }).execution_id;

  // The same request, its fields in another order: the same execution.
  const same = await postJSON(`${server.url}/api/sessions/idem-a/run`, { env: { B: '2', A: '1' }, code: body.code, language: 'bash' }, { 'idempotency-key': key });
  assert.equal(same.status, 200);
  assert.equal(((await same.json()) as { execution_id: string }).execution_id, firstID);

  const different = [
    { name: 'another session', path: '/api/sessions/idem-b/run', body },
    { name: 'other code', path: '/api/sessions/idem-a/run', body: { ...body, code: 'echo other' } },
    { name: 'another language', path: '/api/sessions/idem-a/run', body: { ...body, language: 'python', code: 'print(1)' } },
    { name: 'other options', path: '/api/sessions/idem-a/stream', body: { ...body, timeout: 5 } },
  ];
  for (const d of different) {
    const res = await postJSON(`${server.url}${d.path}`, d.body, { 'idempotency-key': key });
    assert.match(await expectError(res, 'INVALID_REQUEST'), /^Idempotency-Key: already used within 24 h for a different request/, d.name);
  }
  const count = await postJSON(`${server.url}/api/sessions/idem-a/run`, { language: 'bash', code: 'cat runs.txt' });
  assert.equal(((await count.json()) as { stdout: string }).stdout, 'ran\n', 'the code ran once, and nothing else ran under the key');
  assert.equal((await fetch(`${server.url}/api/sessions/idem-b`)).status, 404, 'the refused request created no session');
});
