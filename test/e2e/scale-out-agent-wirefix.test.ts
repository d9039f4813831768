/**
 * Scale-out review fixes (issue 16) on the agent paths, through real nodes (redis-server, one API
 * node, one worker, a scripted model on loopback): an `agent` command reaching a worker for a
 * session it does not hold is refused instead of starting a run in a blank session; an agent
 * run's record lives while the run does, however short the log retention, and only then as long
 * as its log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertUnheldSessionRefused, useCluster, type ClusterNode } from './helpers/cluster.js';
import { call, createSession, sessionId, until } from './helpers/cluster-client.js';

// A short retention: an agent run's record must outlive it while the run goes on.
const { skip, cluster, model } = useCluster({ apis: 1, workers: 1, model: true, env: { SLUICE_LOG_RETENTION: '3' } });

function api(): ClusterNode {
  const a = cluster().apis[0];
  assert.ok(a, 'an API node');
  return a;
}

test('an agent command for a session its worker does not hold is refused (NOT_FOUND), not run in a blank session', { skip, timeout: 60_000 }, async () => {
  const asked = model().requests.length;
  await assertUnheldSessionRefused(cluster(), api().url, (sid) => ({ type: 'agent', owner: null, session_id: sid, run_id: `ghost-${sid}`, request: { prompt: 'hi' } }));
  assert.equal(model().requests.length, asked, 'the model was never called');
});

test("an agent run's record lives while the run does (past a 3 s retention), then as long as its log", { skip, timeout: 90_000 }, async () => {
  const conn = cluster().connection();
  const ac = new AbortController();
  try {
    const sid = sessionId('agentttl');
    await createSession(api().url, sid);
    model().push({ steps: [{ hold: 'ttl' }, { text: 'done' }, { finish: 'stop' }, { usage: { prompt: 5, completion: 1 } }] });
    const res = await call(api().url, 'POST', `/api/sessions/${sid}/agent`, { prompt: 'wait' }, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
    assert.equal(res.status, 200, await (res.status === 200 ? Promise.resolve('') : res.text()));
    const runID = res.headers.get('sluice-agent-run-id');
    assert.ok(runID, 'Sluice-Agent-Run-Id');
    await model().reached('ttl');
    // Running: the record's TTL is the live one (hours), not the 3 s retention.
    const live = await conn.writer.pttl(conn.key(`run:${runID}`));
    assert.ok(live > 60_000, `the running run's record expires in ${live} ms`);
    assert.equal((await call(api().url, 'GET', `/api/agent-runs/${runID}`)).status, 200);
    model().release('ttl');
    await until('the run finished', 30_000, async () => {
      const r = await call(api().url, 'GET', `/api/agent-runs/${runID}`);
      return r.status === 200 && ((await r.json()) as { state: string }).state === 'finished';
    });
    // Ended: the record now lives as long as its log.
    await until('the record kept for the retention only', 10_000, async () => {
      const ttl = await conn.writer.pttl(conn.key(`run:${runID}`));
      return ttl > 0 && ttl <= 3000;
    });
  } finally {
    ac.abort();
    await conn.close();
  }
});
