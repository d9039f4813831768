/**
 * Live streaming end to end: real server, real bubblewrap sandboxes. Events must arrive while
 * the program still runs (measured by arrival times), in one contiguous log ending in one done.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf, postJSON, readNDJSON, readSSE, stream, text } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

test('print() without flush streams line by line while the program runs', async () => {
  const t0 = performance.now();
  // Each next line is printed 0.3 s after this client has received the previous one (it answers
  // each line on stdin; readline does not flush stdout as input() would): a loaded machine
  // slows the run down but cannot bunch the lines up, and output held back until the end would
  // leave the program waiting until its timeout.
  const res = await postJSON(`${server.url}/api/sessions/live-py/stream`, {
    code: 'import sys, time\nfor i in range(5):\n    print(f"tick {i}")\n    sys.stdin.readline()\n    time.sleep(0.3)\n',
    timeout: 60,
  });
  assert.equal(res.status, 200);
  const id = res.headers.get('sluice-execution-id');
  const answers: Promise<void>[] = [];
  const events = await readSSE(res, (ev) => {
    if (ev.type !== 'stdout') return;
    for (const ch of ev.content) {
      if (ch === '\n') answers.push(postJSON(`${server.url}/api/executions/${id}/stdin`, { data: '\n' }).then(async (r) => assert.equal(r.status, 202, await r.text())));
    }
  });
  await Promise.all(answers);
  assertContiguous(events);
  const done = doneOf(events);
  assert.equal(done.reason, 'exited');
  assert.equal(done.exit_code, 0);
  assert.equal(text(events, 'stdout'), [0, 1, 2, 3, 4].map((i) => `tick ${i}\n`).join(''));
  // When each complete line arrived (python writes the text and the newline separately, so a
  // line may span two events under load: time the event that completes it).
  const lineArrivals: number[] = [];
  for (const e of events) {
    if (e.type !== 'stdout') continue;
    for (const ch of e.content) if (ch === '\n') lineArrivals.push(e.arrivedAt);
  }
  assert.equal(lineArrivals.length, 5);
  // The first line arrives long before the program ends (≈1.2 s later).
  const first = lineArrivals[0] ?? 0;
  assert.ok(done.arrivedAt - first > 1000, `first line at ${first - t0} ms, done at ${done.arrivedAt - t0} ms`);
  const gaps = lineArrivals.slice(1).map((t, i) => t - (lineArrivals[i] ?? 0));
  for (const g of gaps) assert.ok(g > 150, `lines spaced by the program's sleeps, got ${gaps.join(', ')} ms`);
});

test('javascript and bash stream too, and stdout and stderr keep their order', async () => {
  // Process mode: process.exit() ends the program (in a kernel it would end the kernel).
  const js = await stream(server.url, 'live-js', {
    language: 'javascript',
    mode: 'process',
    code: 'console.log("out1"); console.error("err1"); setTimeout(() => { console.log("out2"); process.exit(3); }, 200);',
  });
  assertContiguous(js);
  assert.deepEqual(
    js.filter((e) => e.type === 'stdout' || e.type === 'stderr').map((e) => (e.type === 'stdout' || e.type === 'stderr' ? `${e.type}:${e.content}` : '')),
    ['stdout:out1\n', 'stderr:err1\n', 'stdout:out2\n'],
  );
  assert.equal(doneOf(js).exit_code, 3);
  const sh = await stream(server.url, 'live-sh', { language: 'bash', code: 'echo a; echo b >&2; sleep 0.2; echo c; exit 7' });
  assert.equal(text(sh, 'stdout'), 'a\nc\n');
  assert.equal(text(sh, 'stderr'), 'b\n');
  assert.equal(doneOf(sh).exit_code, 7);
  assert.equal(doneOf(sh).reason, 'exited');
});

test('the start event names the execution, session, language and mode; SSE headers forbid buffering', async () => {
  const res = await postJSON(`${server.url}/api/sessions/headers/stream`, { code: 'print(1)' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.equal(res.headers.get('cache-control')?.includes('no-cache'), true);
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  const events = await readSSE(res);
  const start = events[0];
  assert.equal(start?.type, 'start');
  if (start?.type !== 'start') return;
  assert.equal(start.session_id, 'headers');
  assert.equal(start.language, 'python');
  assert.equal(start.mode, 'kernel', 'python runs in a kernel by default');
  assert.equal(res.headers.get('sluice-execution-id'), start.execution_id);
});

test('/run answers buffered JSON by default, NDJSON and SSE by Accept', async () => {
  const body = { code: 'import sys\nprint("hi")\nprint("oops", file=sys.stderr)\nsys.exit(2)' };
  const json = await postJSON(`${server.url}/api/sessions/run-json/run`, body);
  assert.equal(json.status, 200);
  const r = (await json.json()) as Record<string, unknown>;
  assert.equal(r['stdout'], 'hi\n');
  assert.equal(r['stderr'], 'oops\n');
  assert.equal(r['exit_code'], 2);
  assert.equal(r['reason'], 'exited');
  assert.match(String(r['duration']), /^\d+\.\d{3}s$/);
  assert.equal(typeof r['duration_ms'], 'number');
  assert.equal(typeof r['execution_id'], 'string');
  assert.deepEqual(r['results'], []);
  assert.equal(r['truncated'], false);

  const nd = await postJSON(`${server.url}/api/sessions/run-json/run`, body, { accept: 'application/x-ndjson' });
  assert.match(nd.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  const ndEvents = await readNDJSON(nd);
  assertContiguous(ndEvents);
  assert.equal(doneOf(ndEvents).exit_code, 2);

  const sse = await postJSON(`${server.url}/api/sessions/run-json/run`, body, { accept: 'text/event-stream' });
  const sseEvents = await readSSE(sse);
  assert.equal(doneOf(sseEvents).exit_code, 2);
});

test('a burst of output is coalesced into few chunks of at most 64 KiB, never split inside a character', async () => {
  const events = await stream(server.url, 'burst', {
    code: 'import sys\nsys.stdout.write("€" * 200000)\nsys.stdout.flush()\n',
  });
  const chunks = events.filter((e) => e.type === 'stdout');
  assert.equal(text(events, 'stdout'), '€'.repeat(200000));
  for (const c of chunks) {
    if (c.type !== 'stdout') continue;
    assert.ok(Buffer.byteLength(c.content) <= 64 * 1024);
    assert.ok(!c.content.includes('\uFFFD'));
  }
  assert.ok(chunks.length <= 20, `600 KB coalesced into ${chunks.length} chunks`);
});
