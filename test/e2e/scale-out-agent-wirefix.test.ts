/**
 * Scale-out review fixes (issue 16) on the agent paths, through real nodes (redis-server, one API
 * node, one worker, a scripted model on loopback): an `agent` command reaching a worker for a
 * session it does not hold is refused instead of starting a run in a blank session; an agent
 * run's record lives while the run does, however short the log retention, and only then as long
 * as its log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../packages/server/dist/internal/api-error.js';
import { Inbox } from '../../packages/server/dist/internal/redis/inbox.js';
import { RedisConnection } from '../../packages/server/dist/internal/redis/redis-connection.js';
import { clusterSkip, PREFIX, startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.js';
import { call, createSession, sessionId, until } from './helpers/cluster-client.js';
import { startScriptedLLM, type ScriptedLLM } from './helpers/scripted-llm.js';

let cluster: TestCluster | null = null;
let llm: ScriptedLLM | null = null;
const skip = clusterSkip();

before(async () => {
  if (skip) return;
  llm = await startScriptedLLM();
  // A short retention: an agent run's record must outlive it while the run goes on.
  cluster = await startCluster({ apis: 1, workers: 1, env: { SLUICE_LLM_BASE_URL: llm.baseURL, SLUICE_LLM_MODEL: 'gpt-4o-mini', SLUICE_LOG_RETENTION: '3' } });
});
after(async () => {
  await cluster?.close();
  await llm?.close();
});

function api(): ClusterNode {
  const a = cluster?.apis[0];
  assert.ok(a, 'cluster started');
  return a;
}

function model(): ScriptedLLM {
  assert.ok(llm, 'scripted model started');
  return llm;
}

test('an agent command for a session its worker does not hold is refused (NOT_FOUND), not run in a blank session', { skip, timeout: 60_000 }, async () => {
  assert.ok(cluster);
  const conn = new RedisConnection({ url: cluster.redis.url, prefix: PREFIX });
  try {
    const [wid] = await cluster.liveWorkerIds();
    assert.ok(wid);
    const sid = sessionId('ghost');
    const asked = model().requests.length;
    await assert.rejects(
      new Inbox(conn).send(wid, { type: 'agent', owner: null, session_id: sid, run_id: `ghost-${sid}`, request: { prompt: 'hi' } }),
      (err: unknown) => err instanceof ApiError && err.code === 'NOT_FOUND',
    );
    assert.equal(model().requests.length, asked, 'the model was never called');
    const list = (await (await call(api().url, 'GET', '/api/sessions')).json()) as { sessions?: { id: string }[] };
    assert.ok(!list.sessions?.some((s) => s.id === sid));
  } finally {
    await conn.close();
  }
});

test("an agent run's record lives while the run does (past a 3 s retention), then as long as its log", { skip, timeout: 90_000 }, async () => {
  assert.ok(cluster);
  const conn = new RedisConnection({ url: cluster.redis.url, prefix: PREFIX });
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
