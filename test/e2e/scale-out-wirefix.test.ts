/**
 * Scale-out review fixes (issue 16) through real nodes (redis-server, one API node, two workers,
 * separate processes): a session with a short idle TTL is not killed under a long run; an
 * execution longer than the log retention is still found while it runs; a `run` reaching a
 * worker for a session it does not hold is refused instead of making a blank one; a worker's
 * public API cannot be reached with a percent-encoded path; with Redis down, a run with an
 * Idempotency-Key answers 503 SANDBOX_UNAVAILABLE, never 500.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertUnheldSessionRefused, PREFIX, useCluster, type ClusterNode } from './helpers/cluster.js';
import { call, sessionId, until } from './helpers/cluster-client.js';

// A short retention: an execution must outlive it while it runs.
const { skip, cluster } = useCluster({ apis: 1, workers: 2, env: { SLUICE_LOG_RETENTION: '3' } });

function api(): ClusterNode {
  const a = cluster().apis[0];
  assert.ok(a, 'an API node');
  return a;
}

test('a session with idle_ttl 3 s is not killed under a buffered run of 14 s, and the run is found past the log retention (3 s) while it runs', { skip, timeout: 90_000 }, async () => {
  const sid = sessionId('shortttl');
  const created = await call(api().url, 'POST', '/api/sessions', { id: sid, idle_ttl: 3 });
  assert.equal(created.status, 201, await created.text());
  const running = call(api().url, 'POST', `/api/sessions/${sid}/run`, { code: 'import time\nprint("start", flush=True)\ntime.sleep(14)\nprint("end")', mode: 'process', timeout: 60 });
  // The execution, by its record: once running, it is looked up again past the retention.
  const key = await until('the execution recorded', 20_000, async () => ((await cluster().redis.command('KEYS', `${PREFIX}exec:*`)) as string[])[0]);
  const id = key.slice(`${PREFIX}exec:`.length);
  const t0 = Date.now();
  await until('5 s into the run (past the retention)', 10_000, () => Date.now() - t0 > 5000);
  const view = await call(api().url, 'GET', `/api/executions/${id}`);
  const vj = (await view.json()) as { state?: string };
  assert.equal(view.status, 200, `GET past the retention while it runs: ${JSON.stringify(vj)}`);
  assert.equal(vj.state, 'running');
  const res = await running;
  const body = (await res.json()) as { stdout?: string; exit_code?: number | null; reason?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.stdout, 'start\nend\n', `the run was not killed: ${JSON.stringify(body)}\n${cluster().logs()}`);
  assert.equal(body.exit_code, 0);
});

test('a run command for a session its worker does not hold is refused (NOT_FOUND), not run in a blank session', { skip, timeout: 60_000 }, async () => {
  await assertUnheldSessionRefused(cluster(), api().url, (sid) => ({ type: 'run', owner: null, session_id: sid, execution_id: `ghost-${sid}`, request: { code: 'print(1)' } }));
});

test("a worker's public API answers 503 however its path is spelled (percent-encoding included)", { skip, timeout: 30_000 }, async () => {
  const worker = cluster().workers[0];
  assert.ok(worker);
  // `/api/nope` matches no route: still "a worker", not 404.
  for (const path of ['/api/sessions', '/%61pi/sessions', '/%61%70%69/sessions', '/api/nope', '/%61pi/nope']) {
    const res = await call(worker.url, 'GET', path);
    const text = await res.text();
    assert.equal(res.status, 503, `${path} on a worker: ${res.status} ${text}`);
    assert.match(text, /this node is a worker/);
  }
});

// Last: Redis goes away for good.
test('with Redis down, a run with an Idempotency-Key and an execution lookup answer 503 SANDBOX_UNAVAILABLE, never 500', { skip, timeout: 90_000 }, async () => {
  const sid = sessionId('down');
  const created = await call(api().url, 'POST', '/api/sessions', { id: sid });
  assert.equal(created.status, 201);
  await cluster().redis.stop();
  for (const [what, req] of [
    ['run with Idempotency-Key', () => call(api().url, 'POST', `/api/sessions/${sid}/run`, { code: 'print(1)' }, { headers: { 'idempotency-key': `k-${sid}` } })],
    ['execution lookup', () => call(api().url, 'GET', '/api/executions/nope')],
  ] as const) {
    const started = Date.now();
    const res = await req();
    const text = await res.text();
    assert.equal(res.status, 503, `${what}: ${res.status} ${text}`);
    assert.match(text, /SANDBOX_UNAVAILABLE/);
    assert.ok(Date.now() - started < 40_000, `${what} answered within the bound`);
  }
});
