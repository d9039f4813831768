/**
 * Resumable streams end to end: a client that drops mid-run reconnects with `Last-Event-ID` or
 * `?from=` and gets every event exactly once; a real EventSource (the npm `eventsource` package)
 * follows a live execution, reconnects by itself after a network cut and stops on the server's
 * 204 after `done`; a dropped client leaves the run going (or cancels it with
 * `on_disconnect: "cancel"`); heartbeats, error answers and live following of a second reader.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENT_TYPES, parseExecutionEvent, type ExecutionEvent } from '@sluice/protocol';
import { ErrorEvent as ConnectionError, EventSource, type FetchLike } from 'eventsource';
import { listenLoopback } from './helpers/net.js';
import { startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf, postJSON, readNDJSON, readSSE, text, type Timed } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

/** A program printing `line 0` … `line n-1`, one every `intervalSec` (40 × 50 ms ≈ 2 s). */
function numberedLines(n = 40, intervalSec = 0.05): { code: string; stdout: string } {
  return {
    code: `import time\nfor i in range(${n}):\n    print(f"line {i}")\n    time.sleep(${intervalSec})\n`,
    stdout: Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''),
  };
}

/** Starts `POST /stream` with an abortable fetch; checks the headers that name the execution. */
async function startStream(session: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<{ res: Response; id: string }> {
  const res = await fetch(`${server.url}/api/sessions/${session}/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  assert.equal(res.status, 200, `stream answered ${res.status}`);
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id, 'Sluice-Execution-Id header');
  assert.equal(res.headers.get('location'), `/api/executions/${id}`);
  return { res, id };
}

/**
 * Reads SSE events until `stopWhen` says so, then aborts the fetch (the connection goes away).
 * Returns every event received before the drop; fails if the stream ended on its own first.
 */
async function readThenDrop(res: Response, ac: AbortController, stopWhen: (ev: Timed, seen: readonly Timed[]) => boolean): Promise<Timed[]> {
  const seen: Timed[] = [];
  await assert.rejects(
    readSSE(
      res,
      (ev) => {
        seen.push(ev);
        if (!ac.signal.aborted && stopWhen(ev, seen)) ac.abort();
      },
      ac.signal,
    ),
    (err: unknown) => err instanceof Error && err.name === 'AbortError',
    'the stream must still be open when the client drops it',
  );
  assert.ok(seen.length > 0);
  return seen;
}

function stdoutCount(events: readonly ExecutionEvent[]): number {
  return events.filter((e) => e.type === 'stdout').length;
}

/** The parts of `GET /api/executions/{id}` these tests read. */
interface ExecutionView {
  state: string;
  stdout: string;
  stderr: string;
  exit_code: number | null;
  reason: string | null;
  last_seq: number;
}

async function getExecution(id: string): Promise<ExecutionView> {
  const res = await fetch(`${server.url}/api/executions/${id}`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as Record<string, unknown>;
  const { state, stdout, stderr, exit_code: exitCode, reason, last_seq: lastSeq } = body;
  assert.equal(typeof state, 'string');
  assert.equal(typeof stdout, 'string');
  assert.equal(typeof stderr, 'string');
  assert.equal(typeof lastSeq, 'number');
  return {
    state: String(state),
    stdout: String(stdout),
    stderr: String(stderr),
    exit_code: typeof exitCode === 'number' ? exitCode : null,
    reason: typeof reason === 'string' ? reason : null,
    last_seq: Number(lastSeq),
  };
}

/** Polls `GET /api/executions/{id}` until it is finished; fails after `timeoutMs`. */
async function untilFinished(id: string, timeoutMs: number): Promise<ExecutionView> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const view = await getExecution(id);
    if (view.state === 'finished') return view;
    assert.ok(performance.now() < deadline, `execution ${id} still ${view.state} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Polls until the execution's log holds events past `seq` (more output the client has not read). */
async function untilLogPast(id: string, seq: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((await getExecution(id)).last_seq <= seq) {
    assert.ok(performance.now() < deadline, `execution ${id} logged nothing past seq ${seq} in ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Events without the client-side arrival time, for comparing two readers. */
function plain(events: readonly ExecutionEvent[]): ExecutionEvent[] {
  return events.map((e) => {
    const { arrivedAt: _ignored, ...rest } = e as ExecutionEvent & { arrivedAt?: number };
    return rest as ExecutionEvent;
  });
}

async function errorBody(res: Response): Promise<{ code: unknown; message: unknown }> {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  assert.ok(body.error, `an error body, got ${JSON.stringify(body)}`);
  return { code: body.error.code, message: body.error.message };
}

// ---------------------------------------------------------------------------------------------
// EventSource harness: records every event, connection error and HTTP request of one client.

interface ESEvent {
  /** The MessageEvent's type (the SSE `event:` field). */
  type: string;
  lastEventId: string;
  event: ExecutionEvent;
  arrivedAt: number;
}
interface ESRequest {
  lastEventID: string | null;
  status: number;
}
interface ESWatch {
  es: EventSource;
  events: ESEvent[];
  /** Connection-level error events (`code` is the HTTP status when there was one). */
  errors: { code: number | undefined; readyState: number }[];
  requests: ESRequest[];
  /** Resolves once the EventSource is CLOSED by the server (a failed connection, e.g. 204). */
  closed: Promise<void>;
}

/** Opens an EventSource on `url` whose fetch records each request's Last-Event-ID and status. */
function watchEventSource(url: string): ESWatch {
  const requests: ESRequest[] = [];
  const recordingFetch: FetchLike = async (input, init) => {
    const req: ESRequest = { lastEventID: init.headers['Last-Event-ID'] ?? null, status: 0 };
    requests.push(req);
    const res = await fetch(input, init);
    req.status = res.status;
    return res;
  };
  const es = new EventSource(url, { fetch: recordingFetch });
  const events: ESEvent[] = [];
  const errors: ESWatch['errors'] = [];
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const onMessage = (m: MessageEvent): void => {
    const data: unknown = JSON.parse(String(m.data));
    const parsed = parseExecutionEvent(data);
    if (!parsed.ok) throw new Error(`not a contract event: ${parsed.message}`);
    events.push({ type: m.type, lastEventId: m.lastEventId, event: parsed.value, arrivedAt: performance.now() });
  };
  for (const type of EVENT_TYPES) {
    if (type === 'error') continue;
    es.addEventListener(type, onMessage);
  }
  // `error` is both a contract event type and EventSource's connection-error event.
  es.addEventListener('error', (ev: Event) => {
    if (ev instanceof MessageEvent) {
      onMessage(ev);
      return;
    }
    errors.push({ code: ev instanceof ConnectionError ? ev.code : undefined, readyState: es.readyState });
    if (es.readyState === es.CLOSED) resolveClosed();
  });
  return { es, events, errors, requests, closed };
}

/** Waits for `p` or fails after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A loopback TCP proxy to the server that cuts its first connection in the middle of the
 * `cutInFrame`-th SSE frame (inside its `data:` line, so that frame is never complete); later
 * connections pass through untouched.
 */
async function startCuttingProxy(target: string, cutInFrame: number): Promise<{ url: string; cuts: () => number; close: () => Promise<void> }> {
  const { hostname, port } = new URL(target);
  let connections = 0;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    const n = ++connections;
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    if (n !== 1) {
      upstream.pipe(client);
      return;
    }
    // Bytes as latin1 text: one character per byte, so indexes are byte offsets.
    let seen = '';
    let dropped = false;
    upstream.on('data', (chunk: Buffer) => {
      if (dropped) return;
      const offset = seen.length;
      seen += chunk.toString('latin1');
      let at = -1;
      for (let k = 0; k < cutInFrame; k++) {
        at = seen.indexOf('\nid: ', at + 1);
        if (at < 0) break;
      }
      const dataLine = at < 0 ? -1 : seen.indexOf('\ndata: {', at);
      if (dataLine < 0) {
        client.write(chunk);
        return;
      }
      dropped = true;
      cuts++;
      const keep = dataLine + '\ndata: {"type'.length - offset;
      client.write(chunk.subarray(0, Math.max(0, keep)), () => {
        client.destroy();
        upstream.destroy();
      });
    });
  });
  const listening = await listenLoopback(proxy, sockets);
  return {
    ...listening,
    cuts: () => cuts,
  };
}

/** Checks what an EventSource saw against the full log: every seq once, ids and types right. */
function assertEventSourceSawLog(w: ESWatch, log: readonly ExecutionEvent[]): void {
  assert.deepEqual(
    w.events.map((e) => e.event.seq),
    log.map((e) => e.seq),
    'every seq exactly once, in order',
  );
  for (const e of w.events) {
    assert.equal(e.lastEventId, String(e.event.seq), 'lastEventId is the seq');
    assert.equal(e.type, e.event.type, 'the event name is the type');
  }
  assert.deepEqual(
    w.events.map((e) => e.event),
    plain(log),
  );
}

// ---------------------------------------------------------------------------------------------

test('a client that drops mid-stream resumes with Last-Event-ID: every event once, no gap', async () => {
  const prog = numberedLines();
  const ac = new AbortController();
  const { res, id } = await startStream('resume-leid', { code: prog.code }, ac.signal);
  const first = await readThenDrop(res, ac, (ev) => ev.type === 'stdout' && ev.content.includes('line 4'));
  assertContiguous(first);
  assert.ok(!first.some((e) => e.type === 'done'));
  const lastSeen = first[first.length - 1]?.seq ?? 0;
  // Let more output pile up in the log, so the resume replays some and then follows live.
  await untilLogPast(id, lastSeen + 2);
  assert.equal((await getExecution(id)).state, 'running', 'the resume must happen while the program runs');

  const again = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': String(lastSeen) } });
  assert.equal(again.status, 200);
  assert.match(again.headers.get('content-type') ?? '', /^text\/event-stream/);
  const rest = await readSSE(again);
  assert.equal(rest[0]?.seq, lastSeen + 1, 'Last-Event-ID names the last event seen: the resume starts right after it');
  const all = [...first, ...rest];
  assertContiguous(all);
  const done = doneOf(all);
  assert.equal(done.reason, 'exited');
  assert.equal(done.exit_code, 0);
  assert.equal(text(all, 'stdout'), prog.stdout);
  assert.equal((await getExecution(id)).last_seq, done.seq);
});

test('a client that drops mid-stream resumes with ?from= (first seq wanted, inclusive)', async () => {
  const prog = numberedLines();
  const ac = new AbortController();
  const { res, id } = await startStream('resume-from', { code: prog.code }, ac.signal);
  const first = await readThenDrop(res, ac, (_ev, seen) => stdoutCount(seen) >= 3);
  assertContiguous(first);
  const lastSeen = first[first.length - 1]?.seq ?? 0;
  await untilLogPast(id, lastSeen + 2);
  assert.equal((await getExecution(id)).state, 'running');

  const again = await fetch(`${server.url}/api/executions/${id}/events?from=${lastSeen + 1}`);
  assert.equal(again.status, 200);
  const rest = await readSSE(again);
  assert.equal(rest[0]?.seq, lastSeen + 1);
  const all = [...first, ...rest];
  assertContiguous(all);
  assert.equal(doneOf(all).reason, 'exited');
  assert.equal(text(all, 'stdout'), prog.stdout);

  // from= is inclusive on a finished log too: from=3 replays seq 3 onwards.
  const replay = await readSSE(await fetch(`${server.url}/api/executions/${id}/events?from=3`));
  assert.deepEqual(plain(replay), plain(all.slice(2)));
});

test('the eventsource package follows a running execution, then stops on the 204 after done', async () => {
  const prog = numberedLines(30, 0.05);
  const { res, id } = await startStream('es-follow', { code: prog.code });
  const reference = readSSE(res);
  const w = watchEventSource(`${server.url}/api/executions/${id}/events`);
  try {
    await within(w.closed, 60_000, 'EventSource closed');
    const log = await reference;
    const done = doneOf(log);
    assertEventSourceSawLog(w, log);
    assert.equal(text(w.events.map((e) => e.event), 'stdout'), prog.stdout);
    // It followed live rather than getting everything at the end: the first line reached it
    // before the program wrote its last (~1.5 s later; the server's ts and our wall clock are
    // the same machine's), which a slow machine delays but cannot reorder.
    const firstOut = w.events.find((e) => e.type === 'stdout');
    const lastOut = log.filter((e) => e.type === 'stdout').at(-1);
    assert.ok(firstOut && lastOut);
    const firstAt = performance.timeOrigin + firstOut.arrivedAt;
    assert.ok(firstAt < lastOut.ts, `the first line arrived ${Math.round(firstAt - lastOut.ts)} ms after the last was written`);

    // After done the stream ends; its automatic reconnect carries the done seq and gets 204.
    assert.deepEqual(w.requests, [
      { lastEventID: null, status: 200 },
      { lastEventID: String(done.seq), status: 204 },
    ]);
    assert.equal(w.es.readyState, w.es.CLOSED);
    assert.equal(w.errors.at(-1)?.code, 204);
    // It stays closed: no reconnect loop (retry is 1000 ms, so one would show by now).
    await sleep(1300);
    assert.equal(w.requests.length, 2, `requests: ${JSON.stringify(w.requests)}`);
    assert.equal(w.es.readyState, w.es.CLOSED);
  } finally {
    w.es.close();
  }
});

test('the eventsource package reconnects by itself after a network cut, with Last-Event-ID, missing nothing', async () => {
  const prog = numberedLines(40, 0.05);
  const { res, id } = await startStream('es-cut', { code: prog.code });
  const reference = readSSE(res);
  // Cut the first connection inside the 6th frame: seq 1..5 arrive whole, seq 6 is half sent.
  const proxy = await startCuttingProxy(server.url, 6);
  const w = watchEventSource(`${proxy.url}/api/executions/${id}/events`);
  try {
    await within(w.closed, 60_000, 'EventSource closed');
    const log = await reference;
    const done = doneOf(log);
    assert.equal(proxy.cuts(), 1, 'the proxy cut the first connection');
    assertEventSourceSawLog(w, log);
    assert.equal(text(w.events.map((e) => e.event), 'stdout'), prog.stdout);
    assert.deepEqual(w.requests, [
      { lastEventID: null, status: 200 },
      { lastEventID: '5', status: 200 },
      { lastEventID: String(done.seq), status: 204 },
    ]);
    assert.equal(w.es.readyState, w.es.CLOSED);
    assert.equal(w.errors.at(-1)?.code, 204);
    // The cut did not stop the run.
    assert.equal(done.reason, 'exited');
  } finally {
    w.es.close();
    await proxy.close();
  }
});

test('a client that disconnects does not stop the run; the full log replays afterwards as SSE and NDJSON', async () => {
  const prog = numberedLines();
  const ac = new AbortController();
  const { res, id } = await startStream('disconnect-continue', { code: prog.code }, ac.signal);
  const first = await readThenDrop(res, ac, (_ev, seen) => stdoutCount(seen) >= 2);
  assert.equal((await getExecution(id)).state, 'running');

  const view = await untilFinished(id, 10_000);
  assert.equal(view.reason, 'exited');
  assert.equal(view.exit_code, 0);
  assert.equal(view.stdout, prog.stdout);
  assert.equal(view.stderr, '');

  const sse = await fetch(`${server.url}/api/executions/${id}/events`);
  assert.equal(sse.status, 200);
  assert.match(sse.headers.get('content-type') ?? '', /^text\/event-stream/);
  const sseEvents = await readSSE(sse);
  assertContiguous(sseEvents);
  assert.equal(doneOf(sseEvents).reason, 'exited');
  assert.equal(sseEvents.length, view.last_seq);
  assert.equal(text(sseEvents, 'stdout'), prog.stdout);
  assert.deepEqual(plain(sseEvents.slice(0, first.length)), plain(first), 'the replay starts with what the first client saw');

  const nd = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { accept: 'application/x-ndjson' } });
  assert.equal(nd.status, 200);
  assert.match(nd.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  const ndEvents = await readNDJSON(nd);
  assertContiguous(ndEvents);
  assert.deepEqual(ndEvents, plain(sseEvents));
});

test('on_disconnect "cancel": dropping the stream cancels the run promptly and keeps the output so far', async () => {
  const ac = new AbortController();
  const { res, id } = await startStream(
    'disconnect-cancel',
    { code: 'import time\nprint("before")\ntime.sleep(30)\nprint("after")\n', on_disconnect: 'cancel' },
    ac.signal,
  );
  await readThenDrop(res, ac, (ev) => ev.type === 'stdout');
  const droppedAt = performance.now();
  const view = await untilFinished(id, 30_000);
  const took = performance.now() - droppedAt;
  // Prompt next to the 30 s the program would run, with room for a loaded machine.
  assert.ok(took < 10_000, `finished ${Math.round(took)} ms after the disconnect`);
  assert.equal(view.reason, 'cancelled');
  assert.equal(view.stdout, 'before\n');

  const log = await readSSE(await fetch(`${server.url}/api/executions/${id}/events`));
  assertContiguous(log);
  assert.equal(doneOf(log).reason, 'cancelled');
  assert.equal(text(log, 'stdout'), 'before\n');
});

test('a stream with nothing to send yet is open at once: its head and ": connected" come while the program still sleeps', async () => {
  // The server holds a stream's head back to send it with the first events; with none, it
  // must still go out at once, not when the program next prints.
  const ac = new AbortController();
  const { res, id } = await startStream('open-idle', { code: 'import time\nprint("before", flush=True)\ntime.sleep(60)\n' }, ac.signal);
  const seen = await readThenDrop(res, ac, (ev) => ev.type === 'stdout');
  const lastSeen = seen[seen.length - 1]?.seq ?? 0;
  const follower = new AbortController();
  try {
    const again = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': String(lastSeen) }, signal: follower.signal });
    assert.equal(again.status, 200);
    assert.ok(again.body);
    const first = await again.body.getReader().read();
    assert.ok(new TextDecoder().decode(first.value).startsWith(': connected\n'), 'the stream opens with its comment');
    assert.equal((await getExecution(id)).state, 'running', 'nothing of the run came before the head: it still sleeps');
  } finally {
    follower.abort();
    await fetch(`${server.url}/api/executions/${id}/cancel`, { method: 'POST' });
  }
  assert.equal((await untilFinished(id, 30_000)).reason, 'cancelled');
});

test('heartbeat: a silent program gets ": ping" comment lines every heartbeat seconds', async () => {
  const res = await postJSON(`${server.url}/api/sessions/heartbeat/stream`, {
    code: 'import time\ntime.sleep(3.5)\nprint("ok")\n',
    heartbeat: 1,
  });
  assert.equal(res.status, 200);
  const raw = await res.text();
  assert.ok(raw.startsWith(': connected\nretry: 1000\n\n'), `the stream starts with a ": connected" comment and a retry hint: ${JSON.stringify(raw.slice(0, 40))}`);
  const pings = raw.split('\n').filter((line) => line === ': ping').length;
  assert.ok(pings >= 2, `expected about 3 pings over 3.5 s at 1 s (the shortest period), got ${pings}:\n${raw}`);
  // The pings are comments between whole frames: the events still decode.
  const events = await readSSE(new Response(raw));
  assertContiguous(events);
  assert.equal(text(events, 'stdout'), 'ok\n');
  assert.equal(doneOf(events).reason, 'exited');
});

test('GET /events answers 204 past the end of a finished log, 404 for an unknown id, 400 for a bad from', async () => {
  const run = await postJSON(`${server.url}/api/sessions/statuses/stream`, { code: 'print("hi")' });
  const id = run.headers.get('sluice-execution-id');
  assert.ok(id);
  const log = await readSSE(run);
  const done = doneOf(log);

  const atDone = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': String(done.seq) } });
  assert.equal(atDone.status, 204);
  assert.equal(await atDone.text(), '');
  const fromPast = await fetch(`${server.url}/api/executions/${id}/events?from=${done.seq + 1}`);
  assert.equal(fromPast.status, 204);
  await fromPast.body?.cancel();
  const ndPast = await fetch(`${server.url}/api/executions/${id}/events?from=${done.seq + 1}`, { headers: { accept: 'application/x-ndjson' } });
  assert.equal(ndPast.status, 204);
  await ndPast.body?.cancel();
  // One short of the end replays just the done event.
  const lastOne = await readSSE(await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': String(done.seq - 1) } }));
  assert.deepEqual(plain(lastOne), plain([done]));

  const unknown = await fetch(`${server.url}/api/executions/no-such-execution/events`);
  assert.equal(unknown.status, 404);
  assert.equal((await errorBody(unknown)).code, 'NOT_FOUND');
  const unknownView = await fetch(`${server.url}/api/executions/no-such-execution`);
  assert.equal(unknownView.status, 404);
  assert.equal((await errorBody(unknownView)).code, 'NOT_FOUND');

  const badFrom = await fetch(`${server.url}/api/executions/${id}/events?from=abc`);
  assert.equal(badFrom.status, 400);
  const err = await errorBody(badFrom);
  assert.equal(err.code, 'INVALID_REQUEST');
  assert.match(String(err.message), /from/);
  const badLastID = await fetch(`${server.url}/api/executions/${id}/events`, { headers: { 'last-event-id': 'abc' } });
  assert.equal(badLastID.status, 400);
  assert.equal((await errorBody(badLastID)).code, 'INVALID_REQUEST');
});

test('a second reader attached with GET /events receives the events as they happen', async () => {
  // The program writes each next line 0.3 s after the second reader has received the previous
  // one (the test answers each line on stdin): a loaded machine slows this down but cannot make
  // a line arrive late, and a reader that did not follow live would leave the program waiting
  // (until its timeout, which fails the test).
  const code = 'import sys, time\nfor i in range(5):\n    time.sleep(0.3)\n    print(f"tick {i}")\n    sys.stdin.readline()\n';
  const { res, id } = await startStream('live-follow', { code, timeout: 60 });
  const primary = readSSE(res);
  const second = await fetch(`${server.url}/api/executions/${id}/events`);
  assert.equal(second.status, 200);
  // Wall-clock arrival times, comparable with the server's `ts` (same machine, same clock).
  const arrivedAt = new Map<number, number>();
  const answers: Promise<void>[] = [];
  const followed = await readSSE(second, (ev) => {
    arrivedAt.set(ev.seq, Date.now());
    if (ev.type !== 'stdout') return;
    for (const ch of ev.content) {
      if (ch !== '\n') continue;
      answers.push(
        postJSON(`${server.url}/api/executions/${id}/stdin`, { data: '\n' }).then(async (r) => assert.equal(r.status, 202, await r.text())),
      );
    }
  });
  await Promise.all(answers);
  const log = await primary;
  assert.deepEqual(plain(followed), plain(log), 'the second reader gets the same log');
  assertContiguous(followed);
  assert.equal(text(followed, 'stdout'), [0, 1, 2, 3, 4].map((i) => `tick ${i}\n`).join(''));

  // One line may come in more than one chunk (the pipeline flushes every few ms), so time lines,
  // not events: when the line's first bytes were written (ts) and when its newline arrived.
  const lines: { writtenAt: number; arrivedAt: number }[] = [];
  let open: number | null = null;
  for (const e of followed) {
    if (e.type !== 'stdout') continue;
    for (const ch of e.content) {
      open ??= e.ts;
      if (ch === '\n') {
        lines.push({ writtenAt: open, arrivedAt: arrivedAt.get(e.seq) ?? Infinity });
        open = null;
      }
    }
  }
  assert.equal(lines.length, 5);
  const report = lines.map((l) => `written ${l.writtenAt - (lines[0]?.writtenAt ?? 0)} ms, arrived ${l.arrivedAt - (lines[0]?.writtenAt ?? 0)} ms`).join('; ');
  // Each line reached the second reader before the program wrote the next one (0.3 s later)...
  lines.slice(1).forEach((next, i) => {
    const prev = lines[i];
    assert.ok(prev && prev.arrivedAt < next.writtenAt, `line ${i} arrived after line ${i + 1} was written: ${report}`);
  });
  // ...so the arrivals spread over the program's sleeps (4 × 0.3 s between the first and last line).
  const spread = (lines[4]?.arrivedAt ?? 0) - (lines[0]?.arrivedAt ?? 0);
  assert.ok(spread > 1000, `lines arrived over ${spread} ms: ${report}`);
});
