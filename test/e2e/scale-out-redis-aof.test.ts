/**
 * Scale-out (issue 16), Redis failing under a cluster that keeps running: Redis (AOF, appendfsync
 * always) SIGKILLed and restarted mid-stream, and its clients paused (CLIENT PAUSE WRITE): the
 * stream loses nothing and the nodes recover (a run afterwards works). Real redis-server, two API
 * nodes, two workers, separate processes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Timed } from './helpers/client.js';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.js';
import { redisSkip } from './helpers/redis-server.js';
import { assertWholeLog, call, drain, follow, numberedLines, reasonOf, sessionId, startStream, stdoutOf, until } from './helpers/cluster-client.js';

let cluster: TestCluster | null = null;
const skip = redisSkip();

before(async () => {
  if (!skip) cluster = await startCluster({ apis: 2, workers: 2, aof: true });
});
after(async () => {
  await cluster?.close();
});

function c(): { cl: TestCluster; a: ClusterNode; b: ClusterNode } {
  assert.ok(cluster, 'cluster started');
  const [a, b] = cluster.apis;
  assert.ok(a && b);
  return { cl: cluster, a, b };
}

/** A quick run through `api` on a new session: the nodes work. */
async function works(api: ClusterNode): Promise<void> {
  const res = await call(api.url, 'POST', `/api/sessions/${sessionId('after')}/run`, { code: 'print(6 * 7)', mode: 'process' });
  const text = await res.text();
  assert.equal(res.status, 200, `a run through ${api.name}: ${text}`);
  assert.equal((JSON.parse(text) as { stdout: string }).stdout, '42\n');
}

/** Streams 80 lines on api0 while `disturb` runs once 10 have arrived; checks the stream and a replay on api1. */
async function streamThrough(disturb: (cl: TestCluster) => Promise<void>): Promise<void> {
  const { cl, a, b } = c();
  const prog = numberedLines(80, 0.05);
  const { res, id } = await startStream(a.url, sessionId('redis'), { code: prog.code, mode: 'process', timeout: 60 });
  const seen: Timed[] = [];
  const ended = drain(res, seen);
  await until('10 lines', 30_000, () => seen.filter((e) => e.type === 'stdout').length >= 10, cl.logs);
  await disturb(cl);
  const how = await Promise.race([ended, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 45_000).unref())]);
  assert.equal(how, 'end', `the stream ended by ${how} after ${seen.length} events\n${cl.logs()}`);
  assertWholeLog(seen, 'the stream on api0');
  assert.equal(stdoutOf(seen), prog.stdout, 'every line once, in order');
  assert.equal(reasonOf(seen.at(-1)), 'exited');

  const replay: Timed[] = [];
  const r = await follow(b.url, id, undefined);
  assert.equal(r.status, 200);
  assert.equal(await drain(r, replay), 'end');
  assert.deepEqual(
    replay.map((e) => [e.seq, e.type]),
    seen.map((e) => [e.seq, e.type]),
    'the replay on api1 is the same log',
  );
}

test('Redis (AOF, fsync always) SIGKILLed and restarted mid-stream: the stream resumes with nothing lost; the nodes work afterwards', { skip, timeout: 60_000 }, async () => {
  await streamThrough(async (cl) => {
    await cl.redis.kill();
    await cl.redis.start();
  });
  const { a, b } = c();
  // The first requests after a restart may meet connections still reconnecting.
  let last = '';
  await until(
    'the cluster answering runs again',
    20_000,
    async () => {
      try {
        await works(a);
        await works(b);
        return true;
      } catch (err) {
        last = String(err);
        return false;
      }
    },
    () => last,
  );
});

test('CLIENT PAUSE 2 s (WRITE): a stream spanning the pause loses nothing, and the nodes recover', { skip, timeout: 60_000 }, async () => {
  await streamThrough(async (cl) => {
    assert.equal(await cl.redis.command('CLIENT', 'PAUSE', 2000, 'WRITE'), 'OK');
  });
  const { a, b } = c();
  await works(a);
  await works(b);
});
