/**
 * Scale-out (issue 16), nodes dying: a worker SIGKILLed mid-run ends its execution with one
 * `done` (`reason: "sandbox_lost"`) on every stream following it, on both API nodes, its session
 * says it is lost, and the code never runs again anywhere; an API node SIGKILLed mid-stream, and
 * the client resumes on the other with Last-Event-ID, every event once. Real redis-server, two API
 * nodes and two workers as separate processes; the tests run in order (each kills a node).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { Timed } from './helpers/client.js';
import { PREFIX, startCluster, type TestCluster } from './helpers/cluster.js';
import { redisSkip } from './helpers/redis-server.js';
import { assertWholeLog, call, createSession, drain, follow, numberedLines, reasonOf, sessionId, startStream, stdoutOf, until } from './helpers/cluster-client.js';
import { hostProcesses } from './helpers/host.js';

let cluster: TestCluster | null = null;
const skip = redisSkip();

before(async () => {
  if (!skip) cluster = await startCluster({ apis: 2, workers: 2 });
});
after(async () => {
  await cluster?.close();
});

function c(): TestCluster {
  assert.ok(cluster, 'cluster started');
  return cluster;
}

async function markerProcesses(marker: string): Promise<number> {
  return (await hostProcesses()).filter((p) => p.args.includes(marker) && !p.stat.startsWith('Z')).length;
}

test('a worker SIGKILLed mid-run: sandbox_lost on every stream (both API nodes), exactly one done; the session is lost; the code is not run again anywhere', { skip, timeout: 60_000 }, async () => {
  const cl = c();
  const [api0, api1] = cl.apis;
  assert.ok(api0 && api1);
  const sid = sessionId('lost');
  await createSession(api0.url, sid);
  const owner = await cl.workerOf(sid);
  assert.ok(owner, `session ${sid} placed on a known worker: ${JSON.stringify(await cl.sessionEntry(sid))}`);
  const wid = (await cl.sessionEntry(sid))['worker'];
  assert.ok(wid);

  // The program says it started, leaves a process whose command line is unique to this run (a
  // `sleep` with an odd duration), then ticks until killed.
  const token = `START-${randomInt(1e9)}`;
  const marker = `4242.${randomInt(1e6)}`;
  const code = `import subprocess, time\nprint("${token}", flush=True)\nsubprocess.Popen(["sleep", "${marker}"])\nfor i in range(600):\n    print(f"tick {i}", flush=True)\n    time.sleep(0.1)\n`;
  const { res, id } = await startStream(api0.url, sid, { code, mode: 'process', timeout: 120 });
  const onA: Timed[] = [];
  const endA = drain(res, onA);
  await until('the program ticking, and its marker process on the host', 30_000, async () => stdoutOf(onA).includes('tick 2') && (await markerProcesses(marker)) === 1, cl.logs);

  // A second client follows the same execution through the other API node.
  const resB = await follow(api1.url, id, undefined);
  assert.equal(resB.status, 200, `follow on api1: ${resB.status}`);
  const onB: Timed[] = [];
  const endB = drain(resB, onB);
  await until('api1 following live', 15_000, () => stdoutOf(onB).includes('tick'));

  await owner.kill();
  // Lease (5 s) + reaper (1 s) + a follower's BLOCK: generous for a loaded machine.
  const ends = await Promise.race([Promise.all([endA, endB]), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 40_000).unref())]);
  assert.notEqual(ends, 'timeout', `the streams did not end within 40 s of the worker's death\n${cl.logs()}`);
  for (const [name, events] of [
    ['api0 (POST /stream)', onA],
    ['api1 (GET /events)', onB],
  ] as const) {
    assertWholeLog(events, name);
    assert.equal(reasonOf(events.at(-1)), 'sandbox_lost', `${name}: ${JSON.stringify(events.at(-1))}`);
    assert.equal(events.filter((e) => e.type === 'start').length, 1, `${name}: one start`);
  }
  assert.deepEqual(
    onB.map((e) => [e.seq, e.type]),
    onA.map((e) => [e.seq, e.type]),
    'both API nodes serve the same log',
  );

  // The dead worker's sandbox is gone (its keepers kill it when the worker dies) …
  await until('no process of the killed run left on the host', 15_000, async () => (await markerProcesses(marker)) === 0);

  // … the next run on the session says clearly that it is lost, on either API node, and runs nothing.
  for (const api of [api1, api0]) {
    const r = await call(api.url, 'POST', `/api/sessions/${sid}/run`, { code: `print("${token}")`, mode: 'process' });
    const body = await r.text();
    // docs/scale-out.md: 503 SANDBOX_UNAVAILABLE saying the session was lost.
    assert.equal(r.status, 503, `a run on the lost session through ${api.name} answered ${r.status}: ${body}`);
    assert.match(body, /SANDBOX_UNAVAILABLE/);
    assert.match(body, /lost/i, `the error says the session is lost: ${body}`);
  }
  const entry = await cl.sessionEntry(sid);
  assert.equal(entry['state'], 'lost', `registry entry: ${JSON.stringify(entry)}`);
  assert.equal(entry['worker'], wid, 'the session was not moved to another worker');

  // Nothing ran again anywhere: no marker process, one start in the log (replayed from seq 1 on
  // either node), and the surviving worker runs nothing.
  assert.equal(await markerProcesses(marker), 0, 'a marker process appeared again');
  for (const api of [api0, api1]) {
    const replay: Timed[] = [];
    const r = await follow(api.url, id, undefined);
    assert.equal(r.status, 200);
    assert.equal(await drain(r, replay), 'end');
    assertWholeLog(replay, `replay on ${api.name}`);
    assert.equal(replay.filter((e) => e.type === 'start').length, 1);
    assert.equal(stdoutOf(replay).split(token).length - 1, 1, 'the start marker is printed once');
    assert.equal(replay.length, onA.length, 'the log did not grow after done');
  }
  for (const w of await cl.liveWorkerIds()) {
    const running = (await cl.redis.command('SMEMBERS', `${PREFIX}worker:${w}:running`)) as string[];
    assert.ok(!running.includes(id), `worker ${w} runs the lost execution again`);
  }
  const view = await call(api1.url, 'GET', `/api/executions/${id}`);
  const v = (await view.json()) as { state?: string; reason?: string };
  assert.equal(v.state, 'finished', JSON.stringify(v));
});

test('an API node SIGKILLed mid-stream: the client resumes on the other with Last-Event-ID, every event once, in order, up to done', { skip, timeout: 60_000 }, async () => {
  const cl = c();
  const [api0, api1] = cl.apis;
  assert.ok(api0 && api1);
  const sid = sessionId('apikill');
  const prog = numberedLines(60, 0.05);
  const { res, id } = await startStream(api0.url, sid, { code: prog.code, mode: 'process' });
  const seen: Timed[] = [];
  const first = drain(res, seen);
  await until('10 lines through api0', 30_000, () => seen.filter((e) => e.type === 'stdout').length >= 10, cl.logs);
  await api0.kill();
  assert.equal(await first, 'error', 'the stream through the killed node breaks');

  const last = seen.at(-1)?.seq;
  assert.ok(last !== undefined);
  const r = await follow(api1.url, id, last);
  assert.equal(r.status, 200, `resume on api1: ${r.status}`);
  const rest: Timed[] = [];
  assert.equal(await drain(r, rest), 'end');
  const all = [...seen, ...rest];
  assertWholeLog(all, 'api0 then api1');
  assert.equal(stdoutOf(all), prog.stdout);
  assert.equal(reasonOf(all.at(-1)), 'exited');
});
