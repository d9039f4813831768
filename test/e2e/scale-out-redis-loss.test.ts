/**
 * Scale-out (issue 16), Redis without persistence restarted mid-stream: its logs are gone, and a
 * client following an execution gets an ending (a `gap`, or `done` with `sandbox_lost`) within a
 * deadline, on its stream or on one resume through the other API node, never silence. Real
 * redis-server (no AOF, no snapshots), two API nodes, two workers, separate processes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Timed } from './helpers/client.js';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { redisSkip } from './helpers/redis-server.js';
import { drain, follow, numberedLines, reasonOf, sessionId, startStream, until } from './helpers/cluster-client.js';

let cluster: TestCluster | null = null;
const skip = redisSkip();

before(async () => {
  if (!skip) cluster = await startCluster({ apis: 2, workers: 2 });
});
after(async () => {
  await cluster?.close();
});

/** How long a client may wait for the ending (a reader notices within one BLOCK; generous). */
const ENDING_MS = 35_000;

function ending(events: readonly Timed[]): Timed | undefined {
  return events.find((e) => e.type === 'gap' || e.type === 'done');
}

test('Redis without persistence restarted mid-stream: a gap (or done sandbox_lost) within a deadline, never silence', { skip, timeout: 60_000 }, async () => {
  assert.ok(cluster);
  const cl = cluster;
  const [a, b] = cl.apis;
  assert.ok(a && b);
  // Runs far longer than the test: only the loss can end its stream.
  const prog = numberedLines(600, 0.05);
  const { res, id } = await startStream(a.url, sessionId('loss'), { code: prog.code, mode: 'process', timeout: 120 });
  const seen: Timed[] = [];
  const ended = drain(res, seen);
  await until('10 lines', 30_000, () => seen.filter((e) => e.type === 'stdout').length >= 10, cl.logs);

  await cl.redis.kill();
  await cl.redis.start();
  assert.equal(await cl.redis.command('DBSIZE'), 0, 'the restarted Redis is empty');

  const t0 = Date.now();
  const how = await Promise.race([ended, new Promise<'silence'>((r) => setTimeout(() => r('silence'), ENDING_MS).unref())]);
  assert.notEqual(how, 'silence', `the stream on api0 neither ended nor said anything within ${ENDING_MS / 1000} s of the loss (last event ${JSON.stringify(seen.at(-1))})\n${cl.logs()}`);
  let end = ending(seen);
  if (!end) {
    // The stream ended without saying why ("unknown: reconnect"): the resume must say it.
    const last = seen.at(-1)?.seq;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), Math.max(5_000, ENDING_MS - (Date.now() - t0)));
    const r = await follow(b.url, id, last, { signal: ac.signal });
    const more: Timed[] = [];
    const resumed = r.status === 200 ? await drain(r, more, ac.signal) : `status ${r.status}: ${await r.text()}`;
    clearTimeout(timer);
    end = ending(more);
    assert.ok(end, `neither the stream (ended by ${how}) nor a resume on api1 (${resumed}) carried a gap or done after the loss\n${cl.logs()}`);
  }
  if (end.type === 'done') assert.equal(reasonOf(end), 'sandbox_lost', JSON.stringify(end));
  // Seqs stay increasing: the ending never pretends to be an earlier event.
  const seqs = seen.map((e) => e.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok((seqs[i] as number) > (seqs[i - 1] as number), `seqs ${seqs.join(',')}`);
});
