/**
 * The server's log (docs/operations.md), read from a real server's output: one JSON line per
 * request and one per execution end, both carrying the request id, and neither the API key
 * nor the code anywhere in the log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { postJSON, readSSE } from './helpers/client.js';
import { waitFor } from './helpers/host.js';
import { startServer, type TestServer } from './helpers/server.js';

const KEY = 'logs-test-key-0123456789abcdef';
const CODE_MARKER = 'CODE_MARKER_7f3a';

let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_API_KEYS: `ops:${KEY}`, SLUICE_LOG_LEVEL: 'info' });
});
after(async () => {
  await server?.stop();
});

type Line = Record<string, unknown>;

/** Every JSON line the server logged so far (its other lines, `sluice: listening…`, are skipped). */
function lines(): Line[] {
  return server
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

test('a run logs one request line and one execution line, both with the request id', async () => {
  const reqID = 'logs-req-1';
  const res = await postJSON(`${server.url}/api/sessions/logs/stream`, { code: `# ${CODE_MARKER}\nprint("out")`, mode: 'process' }, { authorization: `Bearer ${KEY}`, 'x-request-id': reqID });
  assert.equal(res.status, 200);
  const execID = res.headers.get('sluice-execution-id');
  assert.ok(execID);
  await readSSE(res);
  const ended = await waitFor('the execution line', 10_000, async () => lines().find((l) => l['msg'] === 'execution finished' && l['execution_id'] === execID));
  assert.equal(ended['reqId'], reqID);
  assert.equal(ended['session_id'], 'logs');
  assert.equal(ended['reason'], 'exited');
  assert.equal(ended['exit_code'], 0);
  assert.equal(typeof ended['duration_ms'], 'number');
  assert.equal(ended['tenant'], 'ops');
  const requests = await waitFor('the request line', 10_000, async () => {
    const found = lines().filter((l) => l['msg'] === 'request' && l['reqId'] === reqID);
    return found.length > 0 ? found : undefined;
  });
  assert.equal(requests.length, 1, 'one line per request');
  const r = requests[0] ?? {};
  assert.equal(r['method'], 'POST');
  assert.equal(r['url'], '/api/sessions/logs/stream');
  assert.equal(r['route'], '/api/sessions/:id/stream');
  assert.equal(r['status'], 200);
  assert.equal(r['complete'], true);
  assert.equal(typeof r['duration_ms'], 'number');
  assert.equal(typeof r['time'], 'number');
  assert.equal(r['level'], 30);
});

test('a refused request is logged too, and neither the key nor the code is ever in the log', async () => {
  const bad = await fetch(`${server.url}/api/sessions`, { headers: { authorization: 'Bearer wrong-key-0123456789abcdef', 'x-request-id': 'logs-req-2' } });
  assert.equal(bad.status, 401);
  const refused = await waitFor('the refused request line', 10_000, async () => lines().find((l) => l['msg'] === 'request' && l['reqId'] === 'logs-req-2'));
  assert.equal(refused['status'], 401);
  const log = server.logs();
  assert.ok(!log.includes(KEY), 'the API key is in the log');
  assert.ok(!log.includes('wrong-key-0123456789abcdef'), 'a presented key is in the log');
  assert.ok(!log.includes(CODE_MARKER), 'the code is in the log');
  assert.ok(!/authorization/i.test(log), 'a header is in the log');
});

test('the server starts without a deprecation warning (a newcomer reads its first lines)', () => {
  assert.doesNotMatch(server.logs(), /Deprecation|DEP\d{4}/, server.logs().slice(0, 2000));
});
