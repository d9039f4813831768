/**
 * Sessions end to end: create, list, inspect and delete; implicit creation by a run; a workspace
 * that persists across executions; session and run environments (and none of the server's);
 * one execution at a time in arrival order; deletion that kills and cleans up; idle expiry;
 * logs that outlive their session; and Idempotency-Key.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, type TestServer } from './helpers/server.js';
import { doneOf, postJSON, readSSE, stream, text, type Timed } from './helpers/client.js';

const SECRET = `sluice-secret-${randomUUID()}`;
let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_TEST_SECRET: SECRET });
});
after(async () => {
  await server.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const UUID = /^[0-9a-f]{32}$/; // 128 random bits, hex
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type JSONObject = Record<string, unknown>;

async function json(res: Response): Promise<JSONObject> {
  const body: unknown = await res.json();
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), `a JSON object: ${JSON.stringify(body)}`);
  return body as JSONObject;
}

/** Runs code with the buffered JSON answer. */
async function run(session: string, body: JSONObject, headers: Record<string, string> = {}): Promise<JSONObject> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/run`, body, headers);
  assert.equal(res.status, 200, `run answered ${res.status}`);
  return json(res);
}

async function listIDs(): Promise<string[]> {
  const res = await fetch(`${server.url}/api/sessions`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { sessions: JSONObject[] };
  return body.sessions.map((s) => String(s['id']));
}

async function statusOf(path: string, method = 'GET'): Promise<number> {
  const res = await fetch(`${server.url}${path}`, { method });
  await res.body?.cancel();
  return res.status;
}

async function workspaces(): Promise<string[]> {
  return readdir(join(server.dataDir, 'workspaces'));
}

/**
 * The host directory of the workspace holding `marker` (a file name written by the session):
 * `<dataDir>/workspaces/<id>/ws`, the tmpfs bound at /workspace.
 */
async function workspaceWith(marker: string): Promise<string> {
  for (const dir of await workspaces()) {
    const ws = join(server.dataDir, 'workspaces', dir, 'ws');
    const names = await readdir(ws).catch((): string[] => []);
    if (names.includes(marker)) return ws;
  }
  throw new Error(`no workspace holds ${marker}`);
}

/** Host processes whose command line contains `needle`. */
async function hostProcesses(needle: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid,args']);
  return stdout.split('\n').filter((l) => l.includes(needle));
}

/** Polls until `check` is true or `ms` pass; returns how long it took, or null on timeout. */
async function waitUntil(ms: number, everyMs: number, check: () => Promise<boolean>): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await check()) return performance.now() - t0;
    await sleep(everyMs);
  }
  return null;
}

/** Starts an SSE run; resolves once `start` arrived, with the execution id and the rest of the stream. */
async function startStream(
  session: string,
  body: JSONObject,
  signal?: AbortSignal,
): Promise<{ executionID: string; events: Promise<Timed[]> }> {
  const res = await fetch(`${server.url}/api/sessions/${session}/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  assert.equal(res.status, 200);
  const executionID = res.headers.get('sluice-execution-id');
  assert.ok(executionID);
  let sawStart = false;
  let started!: () => void;
  const startSeen = new Promise<void>((r) => (started = r));
  const events = readSSE(
    res,
    (e) => {
      if (e.type === 'start' && !sawStart) {
        sawStart = true;
        started();
      }
    },
    signal,
  );
  // A stream that ends or fails before `start` must fail the test rather than hang it.
  const endedEarly = events.then(
    () => {
      if (!sawStart) throw new Error('the stream ended before start');
    },
    (err: unknown) => {
      if (!sawStart) throw err;
    },
  );
  await Promise.race([startSeen, endedEarly]);
  return { executionID, events };
}

test('POST /api/sessions creates a session (201, Location, its settings), GET lists and shows it, DELETE removes it', async () => {
  const t0 = Date.now();
  const res = await postJSON(`${server.url}/api/sessions`, {
    id: 'named-1',
    language: 'bash',
    idle_ttl: 120,
    env: { A: '1' },
    limits: { processes: 64 },
  });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), '/api/sessions/named-1');
  const s = await json(res);
  assert.equal(s['id'], 'named-1');
  assert.equal(s['language'], 'bash');
  assert.equal(s['idle_ttl'], 120);
  assert.equal(s['network'], false);
  assert.deepEqual(s['env_keys'], ['A']);
  assert.ok(!JSON.stringify(s).includes('"1"'), 'env values are not echoed');
  assert.equal(s['state'], 'idle');
  const limits = s['limits'] as JSONObject;
  assert.equal(limits['processes'], 64);
  for (const k of ['output_bytes', 'open_files', 'file_size']) assert.equal(typeof limits[k], 'number', `limits.${k} has its default`);
  assert.match(String(s['expires_at']), ISO);
  const expires = Date.parse(String(s['expires_at']));
  assert.ok(Math.abs(expires - (t0 + 120_000)) < 5000, `expires_at ≈ now + idle_ttl, got ${String(s['expires_at'])}`);

  const anon = await postJSON(`${server.url}/api/sessions`, {});
  assert.equal(anon.status, 201);
  const a = await json(anon);
  const anonID = String(a['id']);
  assert.match(anonID, UUID);
  assert.equal(anon.headers.get('location'), `/api/sessions/${anonID}`);
  assert.equal(a['language'], 'python');
  assert.equal(a['idle_ttl'], 900);
  assert.ok(a['limits'] && typeof a['limits'] === 'object');
  assert.match(String(a['expires_at']), ISO);

  // No body at all is all defaults too.
  const bare = await fetch(`${server.url}/api/sessions`, { method: 'POST' });
  assert.equal(bare.status, 201);
  const bareID = String((await json(bare))['id']);
  assert.match(bareID, UUID);
  assert.notEqual(bareID, anonID);

  const ids = await listIDs();
  for (const id of ['named-1', anonID, bareID]) assert.ok(ids.includes(id), `${id} listed in ${ids.join(', ')}`);

  const one = await fetch(`${server.url}/api/sessions/named-1`);
  assert.equal(one.status, 200);
  const got = await json(one);
  assert.equal(got['id'], 'named-1');
  assert.equal(got['language'], 'bash');
  assert.deepEqual(got['limits'], s['limits']);

  for (const id of ['named-1', anonID, bareID]) {
    const del = await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    assert.equal(await statusOf(`/api/sessions/${id}`), 404);
    assert.equal(await statusOf(`/api/sessions/${id}`, 'DELETE'), 404);
  }
  const after = await listIDs();
  for (const id of ['named-1', anonID, bareID]) assert.ok(!after.includes(id));
});

test('a run on an unknown session id creates it with defaults', async () => {
  assert.equal(await statusOf('/api/sessions/implicit-1'), 404);
  const r = await run('implicit-1', { code: 'print("made")' });
  assert.equal(r['stdout'], 'made\n');
  assert.ok((await listIDs()).includes('implicit-1'));
  const s = await json(await fetch(`${server.url}/api/sessions/implicit-1`));
  assert.equal(s['language'], 'python');
  assert.equal(s['idle_ttl'], 900);
  assert.equal(s['executions'], 1);
  assert.equal(await statusOf('/api/sessions/implicit-1', 'DELETE'), 204);
});

test('the workspace persists across executions and languages; cwd is /workspace; files belong to the sandbox user', async () => {
  const marker = `notes-${randomUUID()}.txt`;
  const py = await run('persist', {
    code: `import os\nprint(os.getcwd())\nwith open(${JSON.stringify(marker)}, "w") as f:\n    f.write("written by python\\n")\n`,
  });
  assert.equal(py['stdout'], '/workspace\n');
  assert.equal(py['exit_code'], 0);

  const sh = await run('persist', {
    language: 'bash',
    code: `pwd; cat ${marker}; stat -c '%u %U' ${marker}; id -u; id -un; echo "$HOME"`,
  });
  assert.equal(sh['stderr'], '');
  assert.equal(sh['stdout'], `/workspace\nwritten by python\n1000 sandbox\n1000\nsandbox\n/workspace\n`);

  // On the host the file belongs to the session's own uid, not to the server's.
  const dir = await workspaceWith(marker);
  const st = await stat(join(dir, marker));
  assert.equal(st.uid, (await stat(dir)).uid, 'the file has the workspace owner');
  if (process.getuid?.() === 0) assert.notEqual(st.uid, 0, 'a root server gives each session an unprivileged host uid');
  assert.equal(await statusOf('/api/sessions/persist', 'DELETE'), 204);
});

test('session env reaches every run, run env overrides it for that run only, and none of the server env leaks', async () => {
  // The server really has the secret, so its absence in the sandbox means something.
  const serverEnv = await readFile(`/proc/${server.proc.pid}/environ`, 'utf8');
  assert.ok(serverEnv.includes(`SLUICE_TEST_SECRET=${SECRET}`));

  const created = await postJSON(`${server.url}/api/sessions`, { id: 'env-1', env: { GREETING: 'hi' } });
  assert.equal(created.status, 201);
  await created.body?.cancel();
  const show = 'import json, os\nprint(json.dumps(dict(os.environ)))';
  const envOf = async (body: JSONObject): Promise<Record<string, string>> => {
    const r = await run('env-1', { code: show, ...body });
    assert.equal(r['exit_code'], 0, String(r['stderr']));
    return JSON.parse(String(r['stdout'])) as Record<string, string>;
  };

  const first = await envOf({});
  assert.equal(first['GREETING'], 'hi');
  const overridden = await envOf({ env: { GREETING: 'hello', EXTRA: 'x' } });
  assert.equal(overridden['GREETING'], 'hello');
  assert.equal(overridden['EXTRA'], 'x');
  const again = await envOf({});
  assert.equal(again['GREETING'], 'hi', 'the override was for one run only');
  assert.equal(again['EXTRA'], undefined);

  for (const env of [first, overridden, again]) {
    assert.equal(env['SLUICE_TEST_SECRET'], undefined);
    assert.ok(!JSON.stringify(env).includes(SECRET), 'the secret is in no variable');
  }
  // Nor in any process of the sandbox, including its PID 1.
  const procs = await run('env-1', {
    language: 'bash',
    code: 'echo "pid1: $(tr "\\0" "\\n" < /proc/1/environ | wc -l) vars"; for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f"; done 2>/dev/null',
  });
  assert.match(String(procs['stdout']), /^pid1: \d+ vars\n/, `/proc/1/environ is readable: ${String(procs['stderr'])}`);
  assert.ok(!String(procs['stdout']).includes(SECRET), 'the secret is in no /proc/*/environ');
  assert.ok(!String(procs['stdout']).includes('SLUICE_TEST_SECRET'));
  assert.equal(await statusOf('/api/sessions/env-1', 'DELETE'), 204);
});

test('one execution at a time per session, in arrival order, while another session runs alongside', async () => {
  const code = (n: number): string => `echo "start ${n}" >> order.txt; sleep 0.4; echo "end ${n}" >> order.txt; echo ${n}`;
  // Each response head arrives once its execution is queued, so awaiting them in turn fixes the order.
  const streams: Promise<Timed[]>[] = [];
  for (const n of [1, 2, 3]) {
    const res = await postJSON(`${server.url}/api/sessions/serial/stream`, { language: 'bash', code: code(n) });
    assert.equal(res.status, 200);
    streams.push(readSSE(res));
  }
  const other = stream(server.url, 'alongside', { language: 'bash', code: 'sleep 0.2; echo other' });
  const [r1, r2, r3, b] = await Promise.all([...streams, other]);
  assert.ok(r1 && r2 && r3 && b);

  for (const [n, events] of [r1, r2, r3].entries()) {
    assert.equal(text(events, 'stdout'), `${n + 1}\n`);
    assert.equal(doneOf(events).reason, 'exited');
  }
  const startTS = (events: Timed[]): number => {
    const s = events.find((e) => e.type === 'start');
    assert.ok(s);
    return s.ts;
  };
  assert.ok(startTS(r2) >= doneOf(r1).ts, `run 2 started at ${startTS(r2)}, after run 1 was done at ${doneOf(r1).ts}`);
  assert.ok(startTS(r3) >= doneOf(r2).ts, `run 3 started at ${startTS(r3)}, after run 2 was done at ${doneOf(r2).ts}`);

  const log = await run('serial', { language: 'bash', code: 'cat order.txt' });
  assert.equal(log['stdout'], 'start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\n');

  // The other session was not queued behind this one.
  assert.equal(text(b, 'stdout'), 'other\n');
  assert.ok(startTS(b) < startTS(r2), `the other session started at ${startTS(b)}, before run 2 at ${startTS(r2)}`);
  assert.ok(doneOf(b).ts < startTS(r3), `the other session finished at ${doneOf(b).ts}, before run 3 started at ${startTS(r3)}`);
  assert.equal(await statusOf('/api/sessions/serial', 'DELETE'), 204);
  assert.equal(await statusOf('/api/sessions/alongside', 'DELETE'), 204);
});

test('DELETE kills the running execution and its daemons, removes the workspace, and keeps the logs readable', async () => {
  const marker = `marker-${randomUUID()}`;
  const first = await run('doomed', { language: 'bash', code: `touch ${marker}; echo kept` });
  const finishedID = String(first['execution_id']);
  const dir = await workspaceWith(marker);
  const before = await workspaces();

  const { executionID, events } = await startStream('doomed', {
    language: 'bash',
    code: '(sleep 12345 &) ; sleep 12345 & wait',
  });
  const startedAt = performance.now();
  const seen = await waitUntil(30_000, 50, async () => (await hostProcesses('sleep 12345')).length >= 2);
  assert.notEqual(seen, null, 'both sleeps are running');

  const t0 = performance.now();
  const del = await fetch(`${server.url}/api/sessions/doomed`, { method: 'DELETE' });
  const took = performance.now() - t0;
  assert.equal(del.status, 204);
  // Bounds for a loaded machine: prompt next to the 12345 s the run would otherwise take.
  assert.ok(took < 5000, `deletion took ${Math.round(took)} ms`);

  const all = await events;
  const done = doneOf(all);
  assert.equal(done.reason, 'cancelled');
  // It ran until the DELETE (however long the sleeps took to appear), then ended promptly.
  assert.ok(done.duration_ms < t0 - startedAt + 5000, `ran ${done.duration_ms} ms, deleted ${Math.round(t0 - startedAt)} ms after its start`);

  assert.deepEqual(await hostProcesses('sleep 12345'), [], 'no process of the session is left');
  const afterDirs = await workspaces();
  assert.equal(afterDirs.length, before.length - 1);
  await assert.rejects(stat(dir), { code: 'ENOENT' }, 'the workspace is gone from the host');
  assert.equal(await statusOf('/api/sessions/doomed'), 404);

  // Both executions' logs outlive the session.
  const killed = await fetch(`${server.url}/api/executions/${executionID}`);
  assert.equal(killed.status, 200);
  const k = await json(killed);
  assert.equal(k['state'], 'finished');
  assert.equal(k['reason'], 'cancelled');
  assert.equal(k['session_id'], 'doomed');
  const kept = await fetch(`${server.url}/api/executions/${finishedID}`);
  assert.equal(kept.status, 200);
  const kj = await json(kept);
  assert.equal(kj['stdout'], 'kept\n');
  assert.equal(kj['exit_code'], 0);
  const replay = await fetch(`${server.url}/api/executions/${finishedID}/events`, { headers: { accept: 'text/event-stream' } });
  assert.equal(replay.status, 200);
  const replayed = await readSSE(replay);
  assert.equal(text(replayed, 'stdout'), 'kept\n');
  assert.equal(doneOf(replayed).reason, 'exited');
});

test('idle TTL: a session with idle_ttl 1 is destroyed after about a second of inactivity', async () => {
  const created = await postJSON(`${server.url}/api/sessions`, { id: 'ttl-list', idle_ttl: 1 });
  assert.equal(created.status, 201);
  await created.body?.cancel();
  const count = (await workspaces()).length;
  const t0 = performance.now();
  // Listing is not activity on any one session.
  const gone = await waitUntil(15_000, 100, async () => !(await listIDs()).includes('ttl-list'));
  assert.notEqual(gone, null, 'the session expired within 15 s');
  const took = performance.now() - t0;
  // Never before its TTL; the upper bound leaves room for a loaded machine's slow sweeps and polls.
  assert.ok(took >= 900 && took <= 8000, `expired after ${Math.round(took)} ms`);
  assert.equal(await statusOf('/api/sessions/ttl-list'), 404);
  // The workspace goes (unmounted, removed) just after the session leaves the list: poll.
  await waitUntil(15_000, 50, async () => (await workspaces()).length === count - 1);
  assert.equal((await workspaces()).length, count - 1, 'its workspace was removed');
});

test('idle TTL: inspecting a session with GET /api/sessions/{id} is not activity', async () => {
  // docs/api.md: a session is active while an execution runs or waits in it, or a client reads its streams.
  const created = await postJSON(`${server.url}/api/sessions`, { id: 'ttl-get', idle_ttl: 1 });
  assert.equal(created.status, 201);
  await created.body?.cancel();
  const t0 = performance.now();
  const gone = await waitUntil(15_000, 250, async () => (await statusOf('/api/sessions/ttl-get')) === 404);
  if (gone === null) await statusOf('/api/sessions/ttl-get', 'DELETE');
  assert.ok(gone !== null, `still there after ${Math.round(performance.now() - t0)} ms of GET polling (idle_ttl 1 s)`);
  assert.ok(gone <= 8000, `expired after ${Math.round(gone)} ms`);
});

test('idle TTL: a session does not expire while an execution runs in it, even with no client attached', async () => {
  const created = await postJSON(`${server.url}/api/sessions`, { id: 'ttl-run', idle_ttl: 1 });
  assert.equal(created.status, 201);
  await created.body?.cancel();
  const ac = new AbortController();
  const { executionID, events } = await startStream('ttl-run', { language: 'bash', code: 'sleep 3; echo survived' }, ac.signal);
  // Disconnect: the run goes on (on_disconnect defaults to continue) and nothing reads it any more.
  ac.abort();
  await events.catch(() => []);

  const execState = async (): Promise<string> => String((await json(await fetch(`${server.url}/api/executions/${executionID}`)))['state']);
  // Time, not a count of polls: on a loaded machine each poll takes longer.
  const disconnectedAt = performance.now();
  let polls = 0;
  let aliveFor = 0;
  while ((await execState()) !== 'finished') {
    assert.ok((await listIDs()).includes('ttl-run'), `the session expired mid-run (poll ${polls})`);
    aliveFor = performance.now() - disconnectedAt;
    polls++;
    assert.ok(aliveFor < 30_000, 'the run finished within 30 s');
    await sleep(200);
  }
  assert.ok(aliveFor >= 1600, `the run was observed for ~2 s or more (${Math.round(aliveFor)} ms, ${polls} polls)`);
  const result = await json(await fetch(`${server.url}/api/executions/${executionID}`));
  assert.equal(result['stdout'], 'survived\n');
  assert.equal(result['reason'], 'exited');
  // Once idle, it expires.
  const gone = await waitUntil(15_000, 100, async () => !(await listIDs()).includes('ttl-run'));
  assert.notEqual(gone, null, 'the session expired after its run ended');
});

test('Idempotency-Key: a repeated run answers with the same execution and the code runs once', async () => {
  const created = await postJSON(`${server.url}/api/sessions`, { id: 'idem' });
  assert.equal(created.status, 201);
  await created.body?.cancel();
  const key = `key-${randomUUID()}`;
  const body = { language: 'bash', code: 'echo ran >> idem.txt; wc -l < idem.txt' };
  const url = `${server.url}/api/sessions/idem/run`;

  const a = await postJSON(url, body, { 'idempotency-key': key });
  assert.equal(a.status, 200);
  const aj = await json(a);
  const b = await postJSON(url, body, { 'idempotency-key': key });
  assert.equal(b.status, 200);
  const bj = await json(b);
  assert.equal(bj['execution_id'], aj['execution_id']);
  assert.equal(b.headers.get('sluice-execution-id'), aj['execution_id']);
  assert.equal(bj['stdout'], '1\n');
  // The same key over SSE replays that execution's log.
  const sse = await postJSON(url, body, { 'idempotency-key': key, accept: 'text/event-stream' });
  const replayed = await readSSE(sse);
  const start = replayed[0];
  assert.ok(start?.type === 'start' && start.execution_id === aj['execution_id']);
  assert.equal(text(replayed, 'stdout'), '1\n');

  const check = await run('idem', { language: 'bash', code: 'cat idem.txt' });
  assert.equal(check['stdout'], 'ran\n', 'the code ran once');
  // Another key is another run.
  const c = await run('idem', body, { 'idempotency-key': `${key}-other` });
  assert.notEqual(c['execution_id'], aj['execution_id']);
  assert.equal(c['stdout'], '2\n');
  assert.equal(await statusOf('/api/sessions/idem', 'DELETE'), 204);
});

test('Idempotency-Key: two concurrent identical runs on a new session id still run the code once', async () => {
  // A client that retries while its first request is still in flight; the session id is new,
  // so the first request is busy creating the session when the retry arrives.
  for (let attempt = 0; attempt < 5; attempt++) {
    const session = `idem-race-${attempt}-${randomUUID().slice(0, 8)}`;
    const key = `race-${randomUUID()}`;
    const body = { language: 'bash', code: 'echo ran >> race.txt; sleep 0.2; wc -l < race.txt' };
    const [a, b] = await Promise.all([run(session, body, { 'idempotency-key': key }), run(session, body, { 'idempotency-key': key })]);
    const lines = await run(session, { language: 'bash', code: 'wc -l < race.txt' });
    await statusOf(`/api/sessions/${session}`, 'DELETE');
    assert.equal(b['execution_id'], a['execution_id'], `attempt ${attempt}: both answers name one execution`);
    assert.equal(lines['stdout'], '1\n', `attempt ${attempt}: the code ran once`);
  }
});
