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

test('two agent runs started at once on one session: one runs, the other is refused and leaves nothing in Redis', { skip, timeout: 90_000 }, async () => {
  const conn = cluster().connection();
  const ac = new AbortController();
  // Agent runs' records and logs (earlier runs' live out their retention).
  const runKeys = async (): Promise<string[]> => [...(await conn.writer.keys(conn.key('run:*'))), ...(await conn.writer.keys(`${conn.logKeys('run:').stream}*`))];
  try {
    // Several rounds: the refusal comes either before the worker opens the run's log or after
    // (both passed the first check); neither may leave a log or a record behind.
    for (let round = 0; round < 3; round++) {
      const sid = sessionId(`busy${round}`);
      await createSession(api().url, sid);
      const before = new Set(await runKeys());
      const hold = `busy${round}`;
      model().push({ steps: [{ hold }, { text: 'done' }, { finish: 'stop' }, { usage: { prompt: 5, completion: 1 } }] });
      const start = (): Promise<Response> => call(api().url, 'POST', `/api/sessions/${sid}/agent`, { prompt: 'wait' }, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
      const answers = await Promise.all([start(), start()]);
      const winner = answers.find((r) => r.status === 200);
      const loser = answers.find((r) => r.status !== 200);
      assert.ok(winner && loser, `one runs, one is refused: ${answers.map((r) => r.status).join(', ')}`);
      const refusal = await loser.text();
      assert.equal(loser.status, 409, refusal);
      assert.match(refusal, /SESSION_BUSY/);
      const runID = winner.headers.get('sluice-agent-run-id');
      assert.ok(runID, 'Sluice-Agent-Run-Id');
      await model().reached(hold);
      // Only the winner's record and log are new in Redis: the loser's were dropped, not left to expire.
      const added = (await runKeys()).filter((k) => !before.has(k) && !k.endsWith(`run:${runID}`) && !k.includes(`{run:${runID}}`));
      assert.deepEqual(added, [], 'nothing of the refused run is left in Redis');
      model().release(hold);
      await until('the run finished', 30_000, async () => {
        const r = await call(api().url, 'GET', `/api/agent-runs/${runID}`);
        return r.status === 200 && ((await r.json()) as { state: string }).state === 'finished';
      });
    }
  } finally {
    ac.abort();
    await conn.close();
  }
});
