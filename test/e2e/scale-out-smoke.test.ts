/**
 * Scale-out, first smoke test: a real redis-server, one worker and one API node, each a
 * separate `sluice serve --role …` process with its own data dir. Runs, streams, executions,
 * sessions and files all go through the API node, which runs no code.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecutionResult, ExecutionView, SessionView } from '@sluice/protocol';
import { prepareDataDir } from '@sluice/sandbox';
import { assertContiguous, doneOf, postJSON, readSSE, text } from './helpers/client.js';
import { redisSkip, startRedis, type TestRedis } from './helpers/redis-server.js';
import { startServer, type TestServer } from './helpers/server.js';

const skip = redisSkip();
let redis: TestRedis | null = null;
let worker: TestServer | null = null;
let api: TestServer | null = null;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  if (!redis) throw new Error('redis-server did not start');
  worker = await startServer({ SLUICE_REDIS_URL: redis.url, SLUICE_ROLE: 'worker' });
  api = await startServer({ SLUICE_REDIS_URL: redis.url, SLUICE_ROLE: 'api' });
});

after(async () => {
  await api?.stop();
  // A SIGKILLed worker leaves its workspaces mounted: a server's start-up unmounts a predecessor's.
  if (worker && worker.proc.signalCode === 'SIGKILL') await prepareDataDir(worker.dataDir);
  await worker?.stop();
  await redis?.close();
});

function base(): string {
  if (!api) throw new Error('no API node');
  return api.url;
}

test('both nodes report their role and Redis on /healthz; the worker refuses public requests', { skip }, async () => {
  const w = (await (await fetch(`${worker?.url}/healthz`)).json()) as Record<string, unknown>;
  const a = (await (await fetch(`${base()}/healthz`)).json()) as Record<string, unknown>;
  assert.equal(w['role'], 'worker');
  assert.equal(a['role'], 'api');
  assert.equal(a['redis'], 'ok');
  const refused = await postJSON(`${worker?.url}/api/sessions/x/run`, { code: 'print(1)' });
  assert.equal(refused.status, 503);
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /API node/);
});

test('a run through the API node streams every event, in order, once', { skip }, async () => {
  const res = await postJSON(`${base()}/api/sessions/smoke/stream`, { code: 'import sys\nfor i in range(200):\n    print("line", i)\nprint("err", file=sys.stderr)' });
  assert.equal(res.status, 200, await res.clone().text());
  const events = await readSSE(res);
  assertContiguous(events);
  assert.equal(events[0]?.type, 'start');
  const done = doneOf(events);
  assert.equal(done.exit_code, 0);
  assert.equal(done.reason, 'exited');
  assert.equal(text(events, 'stdout'), Array.from({ length: 200 }, (_, i) => `line ${i}\n`).join(''));
  assert.equal(text(events, 'stderr'), 'err\n');

  // The execution is readable afterwards, from Redis, through the API node.
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id);
  const view = (await (await fetch(`${base()}/api/executions/${id}`)).json()) as ExecutionView;
  assert.equal(view.state, 'finished');
  assert.equal(view.session_id, 'smoke');
  assert.equal(view.language, 'python');
  assert.equal(view.exit_code, 0);
  assert.ok(view.started_at !== null && view.finished_at !== null);
  // Replayed from the middle (output is coalesced into fewer events than lines).
  const from = events[Math.floor(events.length / 2)]?.seq ?? 1;
  const replay = await readSSE(await fetch(`${base()}/api/executions/${id}/events?from=${from}`, { headers: { accept: 'text/event-stream' } }));
  assert.deepEqual(
    replay.map((e) => e.seq),
    events.filter((e) => e.seq >= from).map((e) => e.seq),
  );
});

test('a buffered run answers its fold; the session lives on the worker and is seen through the API node', { skip }, async () => {
  const res = await postJSON(`${base()}/api/sessions/smoke/run`, { code: 'x = 6 * 7\nprint(x)' });
  assert.equal(res.status, 200);
  const r = (await res.json()) as ExecutionResult;
  assert.equal(r.stdout, '42\n');
  assert.equal(r.exit_code, 0);
  const s = (await (await fetch(`${base()}/api/sessions/smoke`)).json()) as SessionView;
  assert.equal(s.id, 'smoke');
  assert.equal(s.executions, 2);
  const list = (await (await fetch(`${base()}/api/sessions`)).json()) as { sessions: SessionView[] };
  assert.deepEqual(
    list.sessions.map((x) => x.id),
    ['smoke'],
  );
});

test('files upload and download through the API node, and the code sees them', { skip }, async () => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 7);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
  const put = await fetch(`${base()}/api/sessions/smoke/files/data/blob.bin`, { method: 'PUT', body });
  assert.equal(put.status, 201, await put.clone().text());
  const got = await fetch(`${base()}/api/sessions/smoke/files/data/blob.bin`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-length'), String(body.length));
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(body), 'the download is the upload, byte for byte');

  const listing = (await (await fetch(`${base()}/api/sessions/smoke/files?dir=data`)).json()) as { entries: { name: string; size: number }[] };
  assert.deepEqual(
    listing.entries.map((e) => [e.name, e.size]),
    [['blob.bin', body.length]],
  );
  const run = (await (await postJSON(`${base()}/api/sessions/smoke/run`, { code: 'import os\nprint(os.path.getsize("data/blob.bin"))' })).json()) as ExecutionResult;
  assert.equal(run.stdout, `${body.length}\n`);

  const missing = await fetch(`${base()}/api/sessions/smoke/files/nope.txt`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  assert.equal((await fetch(`${base()}/api/sessions/smoke/files/data/blob.bin`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${base()}/api/sessions/smoke/files/data/blob.bin`)).status, 404);
});

test('cancel and stdin reach the worker through the API node', { skip }, async () => {
  const res = await postJSON(`${base()}/api/sessions/smoke/stream`, { code: 'import sys\nprint("ready", flush=True)\nprint("got", sys.stdin.readline().strip(), flush=True)\nimport time\ntime.sleep(60)' });
  assert.equal(res.status, 200);
  const id = res.headers.get('sluice-execution-id');
  let sent = false;
  const events = await readSSE(res, (ev) => {
    if (ev.type === 'stdout' && ev.content.includes('ready') && !sent) {
      sent = true;
      void postJSON(`${base()}/api/executions/${id}/stdin`, { data: 'hello\n' });
    }
    if (ev.type === 'stdout' && ev.content.includes('got hello')) void postJSON(`${base()}/api/executions/${id}/cancel`, {});
  });
  assert.match(text(events, 'stdout'), /got hello/);
  assert.equal(doneOf(events).reason, 'cancelled');
});

test('deleting a session through the API node removes it everywhere', { skip }, async () => {
  assert.equal((await fetch(`${base()}/api/sessions/smoke`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${base()}/api/sessions/smoke`)).status, 404);
  const list = (await (await fetch(`${base()}/api/sessions`)).json()) as { sessions: SessionView[] };
  assert.deepEqual(list.sessions, []);
});

test('a worker killed mid-run: the stream ends with sandbox_lost, and the session says it was lost', { skip }, async () => {
  const res = await postJSON(`${base()}/api/sessions/doomed/stream`, { code: 'import time\nprint("up", flush=True)\ntime.sleep(120)' });
  assert.equal(res.status, 200);
  const id = res.headers.get('sluice-execution-id');
  const events = await readSSE(res, (ev) => {
    if (ev.type === 'stdout' && ev.content.includes('up')) worker?.proc.kill('SIGKILL');
  });
  assertContiguous(events);
  const done = doneOf(events);
  assert.equal(done.reason, 'sandbox_lost');
  assert.equal(done.exit_code, null);
  const view = (await (await fetch(`${base()}/api/executions/${id}`)).json()) as ExecutionView;
  assert.equal(view.state, 'finished');
  assert.equal(view.reason, 'sandbox_lost');

  const again = await postJSON(`${base()}/api/sessions/doomed/run`, { code: 'print(1)' });
  assert.equal(again.status, 503);
  assert.match(((await again.json()) as { error: { message: string } }).error.message, /was lost/);
  assert.equal((await fetch(`${base()}/api/sessions/doomed`, { method: 'DELETE' })).status, 204);
});
