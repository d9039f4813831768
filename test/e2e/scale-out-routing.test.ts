/**
 * Scale-out (issue 16), requests crossing nodes: new sessions spread over both workers; stdin and
 * cancel sent through the other API node than the one streaming; an Idempotency-Key retried on
 * the other API node answers the same execution; files uploaded through one API node and
 * downloaded through the other; two tenants (SLUICE_API_KEYS on every node) isolated through
 * every node. Real redis-server, two API nodes, two workers, separate processes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import type { Timed } from './helpers/client.js';
import { startCluster, type ClusterNode, type TestCluster } from './helpers/cluster.js';
import { redisSkip } from './helpers/redis-server.js';
import { assertWholeLog, call, createSession, drain, follow, reasonOf, sessionId, startStream, stdoutOf, until } from './helpers/cluster-client.js';

const ALICE = `alice-${randomBytes(16).toString('hex')}`;
const BOB = `bob-${randomBytes(16).toString('hex')}`;

let cluster: TestCluster | null = null;
const skip = redisSkip();

before(async () => {
  if (!skip) cluster = await startCluster({ apis: 2, workers: 2, env: { SLUICE_API_KEYS: `alice:${ALICE},bob:${BOB}` } });
});
after(async () => {
  await cluster?.close();
});

function apis(): [ClusterNode, ClusterNode] {
  assert.ok(cluster, 'cluster started');
  const [a, b] = cluster.apis;
  assert.ok(a && b);
  return [a, b];
}

/** A buffered run (JSON answer): status, execution id and body. */
async function run(api: ClusterNode, sid: string, body: Record<string, unknown>, key = ALICE, headers: Record<string, string> = {}): Promise<{ status: number; id: string | null; json: Record<string, unknown>; text: string }> {
  const res = await call(api.url, 'POST', `/api/sessions/${sid}/run`, body, { key, headers });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Reported by the caller's assertion on status.
  }
  return { status: res.status, id: res.headers.get('sluice-execution-id'), json, text };
}

test('load spread: new sessions land on both workers, and each runs its code', { skip, timeout: 60_000 }, async () => {
  assert.ok(cluster);
  const cl = cluster;
  const [a, b] = apis();
  const ids = Array.from({ length: 6 }, (_, i) => sessionId(`spread${i}`));
  // The load a worker reports (`sessions` in its registry hash) is what placement reads: each
  // creation waits until it shows, so the next one sees it (a report may lag by a heartbeat).
  const reported = async (): Promise<number> => {
    let n = 0;
    for (const w of await cl.liveWorkerIds()) n += Number((await cl.redis.command('HGET', `sluice:worker:${w}`, 'sessions')) ?? 0);
    return n;
  };
  const before0 = await reported();
  const lags: number[] = [];
  for (const [i, sid] of ids.entries()) {
    await createSession((i % 2 === 0 ? a : b).url, sid, { key: ALICE });
    const t = Date.now();
    await until(`the workers reporting ${before0 + i + 1} sessions in the registry`, 5_000, async () => (await reported()) >= before0 + i + 1);
    lags.push(Date.now() - t);
  }
  const placed = await Promise.all(ids.map((sid) => cl.workerOf(sid)));
  const counts = new Map<string, number>();
  for (const w of placed) {
    assert.ok(w, `every session is placed on a known worker: ${placed.map((p) => p?.name).join(',')}`);
    counts.set(w.name, (counts.get(w.name) ?? 0) + 1);
  }
  assert.equal(counts.size, 2, `sessions on both workers: ${JSON.stringify([...counts])} (load reported after ${lags.join(', ')} ms)`);
  for (const n of counts.values()) assert.ok(n >= 2, `least-loaded placement spreads 6 sessions at least 2/4: ${JSON.stringify([...counts])}`);
  // Each runs, through the API node that did not create it (one at a time: a tenant may run 4 at once).
  for (const [i, sid] of ids.entries()) {
    const o = await run(i % 2 === 0 ? b : a, sid, { code: `print("${sid}")`, mode: 'process' });
    assert.equal(o.status, 200, o.text);
    assert.equal(o.json['stdout'], `${sid}\n`);
  }
});

test('load spread: a burst of new sessions, half through each API node, lands on both workers', { skip, timeout: 60_000 }, async () => {
  assert.ok(cluster);
  const cl = cluster;
  const [a, b] = apis();
  // Placement counts each new session on its worker at once (in the placing script), so a burst
  // alternates between workers that run as much. Running executions are reported by heartbeat:
  // wait until both report none (the earlier test's runs), then nothing can tip the balance.
  await until('both workers reporting no running executions', 20_000, async () => {
    const ids = await cl.liveWorkerIds();
    const running = await Promise.all(ids.map(async (w) => Number((await cl.redis.command('HGET', `sluice:worker:${w}`, 'running')) ?? 0)));
    return ids.length === 2 && running.every((n) => n === 0);
  });
  const ids = Array.from({ length: 10 }, (_, i) => sessionId(`burst${i}`));
  await Promise.all(ids.map((sid, i) => createSession((i % 2 === 0 ? a : b).url, sid, { key: ALICE })));
  const placed = await Promise.all(ids.map((sid) => cl.workerOf(sid)));
  const names = new Set(placed.map((w) => w?.name));
  assert.ok(!names.has(undefined), `every session placed on a known worker: ${placed.map((w) => w?.name).join(',')}`);
  assert.equal(names.size, 2, `10 sessions on both workers: ${placed.map((w) => w?.name).join(',')}`);
  for (const n of names) assert.ok(placed.filter((w) => w?.name === n).length >= 2, `the burst spreads: ${placed.map((w) => w?.name).join(',')}`);
});

test('stdin and cancel sent through the other API node than the one streaming', { skip, timeout: 60_000 }, async () => {
  const [a, b] = apis();
  const sid = sessionId('xnode');
  const code = 'import time\nprint("ready", flush=True)\nline = input()\nprint("got " + line, flush=True)\nwhile True:\n    time.sleep(0.1)\n';
  const { res, id } = await startStream(a.url, sid, { code, mode: 'process', timeout: 60 }, { key: ALICE });
  const seen: Timed[] = [];
  const ended = drain(res, seen);
  await until('ready', 30_000, () => stdoutOf(seen).includes('ready'), () => cluster?.logs() ?? '');

  const s = await call(b.url, 'POST', `/api/executions/${id}/stdin`, { data: 'hello over b\n' }, { key: ALICE });
  assert.equal(s.status, 202, `stdin through api1: ${s.status} ${await s.text()}`);
  await until('the line read back', 20_000, () => stdoutOf(seen).includes('got hello over b'));

  const cancel = await call(b.url, 'POST', `/api/executions/${id}/cancel`, undefined, { key: ALICE });
  const cj = (await cancel.json()) as { cancelled?: boolean };
  assert.equal(cancel.status, 202, JSON.stringify(cj));
  assert.equal(cj.cancelled, true);
  assert.equal(await ended, 'end');
  assertWholeLog(seen, 'stream on api0');
  assert.equal(reasonOf(seen.at(-1)), 'cancelled');
});

test('an Idempotency-Key retried on the other API node answers the same execution, and the code ran once', { skip, timeout: 60_000 }, async () => {
  const [a, b] = apis();
  const sid = sessionId('idem');
  await createSession(a.url, sid, { key: ALICE });
  const nonce = randomInt(1e9);
  // Each run appends one line to a file of the workspace: how many times it ran.
  const body = { code: `with open("ran.txt", "a") as f:\n    f.write("x\\n")\nprint("${nonce}")`, mode: 'process' };

  const key1 = `k1-${nonce}`;
  const first = await run(a, sid, body, ALICE, { 'idempotency-key': key1 });
  assert.equal(first.status, 200, first.text);
  const retry = await run(b, sid, body, ALICE, { 'idempotency-key': key1 });
  assert.equal(retry.status, 200, retry.text);
  assert.equal(retry.id, first.id, 'the retry on api1 names the same execution');
  assert.equal(retry.json['stdout'], `${nonce}\n`);

  // Both at once, one per API node: still one execution.
  const key2 = `k2-${nonce}`;
  const [x, y] = await Promise.all([run(a, sid, body, ALICE, { 'idempotency-key': key2 }), run(b, sid, body, ALICE, { 'idempotency-key': key2 })]);
  assert.equal(x.status, 200, x.text);
  assert.equal(y.status, 200, y.text);
  assert.equal(x.id, y.id, 'concurrent duplicates on two nodes share one execution');
  assert.notEqual(x.id, first.id);

  const count = await run(b, sid, { code: 'print(open("ran.txt").read().count("x"))', mode: 'process' });
  assert.equal(count.json['stdout'], '2\n', 'two keys, two runs: the retries ran nothing');
});

test('files uploaded through one API node are downloaded, listed and read by code through the other', { skip, timeout: 60_000 }, async () => {
  const [a, b] = apis();
  const sid = sessionId('files');
  await createSession(a.url, sid, { key: ALICE });
  const bytes = randomBytes(300_000);
  const put = await call(a.url, 'PUT', `/api/sessions/${sid}/files/data/blob.bin`, new Uint8Array(bytes), { key: ALICE });
  assert.equal(put.status, 201, `upload via api0: ${put.status} ${await put.text()}`);

  const get = await call(b.url, 'GET', `/api/sessions/${sid}/files/data/blob.bin`, undefined, { key: ALICE });
  assert.equal(get.status, 200, `download via api1: ${get.status}`);
  assert.ok(Buffer.from(await get.arrayBuffer()).equals(bytes), 'the same bytes');

  const list = await call(b.url, 'GET', `/api/sessions/${sid}/files?dir=data`, undefined, { key: ALICE });
  const lj = (await list.json()) as { entries?: { name: string; size: number }[] };
  assert.deepEqual(lj.entries?.map((e) => [e.name, e.size]), [['blob.bin', bytes.length]]);

  const r = await run(b, sid, { code: 'import os\nprint(os.path.getsize("data/blob.bin"))', mode: 'process' });
  assert.equal(r.json['stdout'], `${bytes.length}\n`);
  // And the other way: written by code, downloaded through api0.
  const w = await run(b, sid, { code: 'open("out.txt", "w").write("from code")', mode: 'process' });
  assert.equal(w.status, 200, w.text);
  const back = await call(a.url, 'GET', `/api/sessions/${sid}/files/out.txt`, undefined, { key: ALICE });
  assert.equal(await back.text(), 'from code');
});

test("two tenants across nodes: bob's key cannot see, run in, stream, cancel or read files of alice's session through any node", { skip, timeout: 60_000 }, async () => {
  const [a, b] = apis();
  const sid = sessionId('tenant');
  await createSession(a.url, sid, { key: ALICE });
  const put = await call(a.url, 'PUT', `/api/sessions/${sid}/files/secret.txt`, new TextEncoder().encode('alice only'), { key: ALICE });
  assert.equal(put.status, 201);
  const { res, id } = await startStream(b.url, sid, { code: 'import time\nprint("alice runs", flush=True)\nwhile True:\n    time.sleep(0.1)\n', mode: 'process', timeout: 60 }, { key: ALICE });
  const seen: Timed[] = [];
  const ended = drain(res, seen);
  await until('alice running', 30_000, () => stdoutOf(seen).includes('alice runs'));

  for (const api of [a, b]) {
    const as = (path: string, method = 'GET', body?: unknown): Promise<Response> => call(api.url, method, path, body, { key: BOB });
    const expect404 = async (what: string, r: Promise<Response>): Promise<void> => {
      const x = await r;
      assert.equal(x.status, 404, `bob ${what} through ${api.name}: ${x.status} ${await x.text()}`);
    };
    await expect404('reads the session', as(`/api/sessions/${sid}`));
    await expect404('reads the execution', as(`/api/executions/${id}`));
    await expect404('streams the execution', follow(api.url, id, undefined, { key: BOB }));
    await expect404('cancels the execution', as(`/api/executions/${id}/cancel`, 'POST'));
    await expect404('writes stdin', as(`/api/executions/${id}/stdin`, 'POST', { data: 'x\n' }));
    await expect404('downloads a file', as(`/api/sessions/${sid}/files/secret.txt`));
    await expect404('lists files', as(`/api/sessions/${sid}/files`));
    await expect404('uploads a file', as(`/api/sessions/${sid}/files/planted.txt`, 'PUT', new TextEncoder().encode('bob')));
    await expect404('deletes the session', as(`/api/sessions/${sid}`, 'DELETE'));
    const list = (await (await as('/api/sessions')).json()) as { sessions?: { id: string }[] };
    assert.ok(!list.sessions?.some((s) => s.id === sid), `bob lists alice's session through ${api.name}`);
  }
  // A run under the same id makes bob's own session (ids are per tenant), wherever it lands:
  // alice's files are not in it, from either node.
  for (const api of [a, b]) {
    const r = await run(api, sid, { code: 'import os\nprint(sorted(os.listdir(".")))', mode: 'process' }, BOB);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json['stdout'], '[]\n', `bob's session ${sid} through ${api.name} sees only its own workspace`);
  }

  // Alice's run was not touched; she ends it herself, and her file is hers alone.
  assert.ok(!seen.some((e) => e.type === 'done'), 'alice run still going');
  const cancel = await call(a.url, 'POST', `/api/executions/${id}/cancel`, undefined, { key: ALICE });
  assert.equal(cancel.status, 202);
  await ended;
  assertWholeLog(seen, 'alice stream');
  assert.equal(reasonOf(seen.at(-1)), 'cancelled');
  const files = (await (await call(b.url, 'GET', `/api/sessions/${sid}/files`, undefined, { key: ALICE })).json()) as { entries?: { name: string }[] };
  assert.deepEqual(files.entries?.map((e) => e.name), ['secret.txt']);
});
