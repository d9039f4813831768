/**
 * The WebSocket transport end to end (docs/websocket.md): real servers, real sandboxes, the `ws`
 * package as the client. Executions multiplexed on one socket with every event tagged, the same
 * bytes as SSE, resume after a dropped socket, cancel and stdin over the socket, malformed
 * messages and the close codes (4400, 4401, 4404, 4408, 4429, 1001, 1009), heartbeats, and a
 * client that stops reading while a program floods output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { decodeSSEStream, parseExecutionEvent, type ExecutionEvent } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON } from './helpers/client.js';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef00';

let server: TestServer;
let authServer: TestServer;
before(async () => {
  // Short heartbeats and HTTP timeouts: sockets must outlive the latter and be pinged by the former.
  [server, authServer] = await Promise.all([
    startServer({ SLUICE_HEARTBEAT: '1', SLUICE_REQUEST_TIMEOUT: '2', SLUICE_HEADERS_TIMEOUT: '1' }),
    // 16 connections: 8 WebSockets, 2 per tenant.
    startServer({ SLUICE_API_KEYS: `alice:${ALICE},bob:${BOB}`, SLUICE_MAX_CONNECTIONS: '16' }),
  ]);
});
after(async () => {
  await Promise.all([server.stop(), authServer.stop()]);
});

// ---------------------------------------------------------------------------------------------
// A small client: every frame kept raw and parsed, waits on predicates, the close code.

type Message = Record<string, unknown>;
interface Received {
  raw: string;
  msg: Message;
}

class Client {
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  pings = 0;
  private listeners = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData) => {
      const raw = data.toString();
      this.received.push({ raw, msg: JSON.parse(raw) as Message });
      for (const l of [...this.listeners]) l();
    });
    ws.on('ping', () => this.pings++);
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Opens a socket; resolves once it is open (a refused socket opens, then closes with a code). */
  static async open(base: string, session: string, opts: { headers?: Record<string, string>; protocols?: string[]; autoPong?: boolean } = {}): Promise<Client> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/sessions/${session}/ws`, opts.protocols ?? [], {
      ...(opts.headers ? { headers: opts.headers } : {}),
      ...(opts.autoPong === false ? { autoPong: false } : {}),
    });
    const client = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('error', () => {});
    return client;
  }

  send(message: Message | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The first message received (so far or later) that matches. */
  async waitFor(pred: (m: Message) => boolean, what: string, ms = 15_000): Promise<Message> {
    const deadline = performance.now() + ms;
    for (;;) {
      const hit = this.received.find((r) => pred(r.msg));
      if (hit) return hit.msg;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms; got ${this.received.map((r) => r.raw.slice(0, 120)).join('\n')}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.listeners.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.listeners.add(wake);
      });
    }
  }

  /** Sends `execute` and waits for its `accepted`; returns the execution id. */
  async execute(requestID: string, run: Message): Promise<string> {
    this.send({ type: 'execute', request_id: requestID, ...run });
    const m = await this.waitFor((x) => (x['type'] === 'accepted' || x['type'] === 'error') && x['request_id'] === requestID, `accepted ${requestID}`);
    assert.equal(m['type'], 'accepted', `execute ${requestID} refused: ${JSON.stringify(m)}`);
    return String(m['execution_id']);
  }

  /** Waits for the `done` of an execution. */
  done(executionID: string, ms?: number): Promise<Message> {
    return this.waitFor((m) => m['type'] === 'done' && m['execution_id'] === executionID && typeof m['seq'] === 'number', `done of ${executionID}`, ms);
  }

  /** The execution events received for one execution, in arrival order. */
  events(executionID: string): Received[] {
    return this.received.filter((r) => typeof r.msg['seq'] === 'number' && r.msg['execution_id'] === executionID);
  }

  /** Index of the first received message matching. */
  indexOf(pred: (m: Message) => boolean): number {
    return this.received.findIndex((r) => pred(r.msg));
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    await this.closed;
  }
}

async function createSession(base: string, id: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await postJSON(`${base}/api/sessions`, { id }, headers);
  assert.equal(res.status, 201, await res.text());
}

/** Checks a complete stream of one execution: contract events, seq 1..n, one done last. */
function checkStream(events: readonly Received[], executionID: string): ExecutionEvent[] {
  const parsed = events.map((r) => {
    assert.equal(r.msg['execution_id'], executionID, `every event names its execution: ${r.raw}`);
    const p = parseExecutionEvent(r.msg);
    assert.ok(p.ok, `a contract event: ${r.raw}`);
    return p.value;
  });
  assert.deepEqual(
    parsed.map((e) => e.seq),
    parsed.map((_, i) => i + 1),
    'seq 1..n, in order, no gaps or repeats',
  );
  assert.equal(parsed[0]?.type, 'start');
  assert.equal(parsed.filter((e) => e.type === 'done').length, 1);
  assert.equal(parsed[parsed.length - 1]?.type, 'done');
  return parsed;
}

function stdoutOf(events: readonly ExecutionEvent[]): string {
  return events.map((e) => (e.type === 'stdout' ? e.content : '')).join('');
}

/** A python program printing `line 0` … `line n-1`, one every `interval` seconds. */
function lines(n: number, interval: number): { code: string; mode: 'process'; stdout: string } {
  return {
    code: `import time\nfor i in range(${n}):\n    print(f"line {i}")\n    time.sleep(${interval})\n`,
    mode: 'process',
    stdout: Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''),
  };
}

// ---------------------------------------------------------------------------------------------

test('execute is accepted, then start … done arrive, every event tagged with the execution id', async () => {
  await createSession(server.url, 'ws-basic');
  const c = await Client.open(server.url, 'ws-basic');
  const id = await c.execute('r1', { code: 'print("hello")\nprint("world")', mode: 'process' });
  assert.match(id, /^[0-9a-f]{32}$/);
  const done = await c.done(id);
  assert.equal(done['reason'], 'exited');
  assert.equal(done['exit_code'], 0);
  const events = checkStream(c.events(id), id);
  assert.equal(stdoutOf(events), 'hello\nworld\n');
  assert.ok(c.indexOf((m) => m['type'] === 'accepted') < c.indexOf((m) => m['type'] === 'start'), 'accepted comes before the first event');
  // The start event names its execution once: no key is repeated.
  const start = c.events(id)[0]?.raw ?? '';
  assert.equal(start.split('"execution_id"').length - 1, 1);
  await c.close();
});

test('executions multiplex on one socket: two queued executes and one started over HTTP, each complete and in order', async () => {
  await createSession(server.url, 'ws-multi');
  const c = await Client.open(server.url, 'ws-multi');
  const httpRun = lines(15, 0.08);
  const res = await postJSON(`${server.url}/api/sessions/ws-multi-http/stream`, { code: httpRun.code, mode: 'process' });
  assert.equal(res.status, 200);
  const httpID = res.headers.get('sluice-execution-id') ?? '';
  await res.body?.cancel();
  // One session runs one execution at a time: the second execute waits in its queue.
  const a = lines(6, 0.08);
  const b = lines(4, 0.05);
  const [idA, idB] = await Promise.all([c.execute('a', { code: a.code, mode: 'process' }), c.execute('b', { code: b.code, mode: 'process' })]);
  c.send({ type: 'subscribe', execution_id: httpID });
  await Promise.all([c.done(idA), c.done(idB), c.done(httpID)]);
  assert.equal(stdoutOf(checkStream(c.events(idA), idA)), a.stdout);
  assert.equal(stdoutOf(checkStream(c.events(idB), idB)), b.stdout);
  assert.equal(stdoutOf(checkStream(c.events(httpID), httpID)), httpRun.stdout);
  // The queued one started after the first finished.
  assert.ok(c.indexOf((m) => m['type'] === 'done' && m['execution_id'] === idA) < c.indexOf((m) => m['type'] === 'start' && m['execution_id'] === idB));
  // The HTTP execution ran alongside: its frames interleave with the others on the one socket.
  const owners = c.received.filter((r) => typeof r.msg['seq'] === 'number').map((r) => r.msg['execution_id']);
  const switches = owners.filter((o, i) => i > 0 && o !== owners[i - 1]).length;
  assert.ok(switches >= 3, `events of different executions interleave (${switches} switches)`);
  await c.close();
});

test('WebSocket events are the SSE data bytes plus the execution id', async () => {
  await createSession(server.url, 'ws-bytes');
  const c = await Client.open(server.url, 'ws-bytes');
  const id = await c.execute('bytes', {
    language: 'bash',
    code: 'echo "héllo \\"quoted\\" \\\\ back ✓"; printf "tab\\there\\r\\n"; echo oops >&2; sluice-progress 40 Loading 2>/dev/null; printf "\\x1b[31mred\\x1b[0m\\x01"; exit 3',
  });
  await c.done(id);
  const res = await fetch(`${server.url}/api/executions/${id}/events`);
  assert.equal(res.status, 200);
  assert.ok(res.body);
  const sse: string[] = [];
  for await (const m of decodeSSEStream(res.body)) sse.push(m.data);
  const ws = c.events(id).map((r) => r.raw);
  assert.equal(ws.length, sse.length);
  assert.ok(ws.length >= 5);
  ws.forEach((frame, i) => {
    const data = sse[i] ?? '';
    const expected = data.startsWith('{"type":"start"') ? data : `${data.slice(0, -1)},"execution_id":${JSON.stringify(id)}}`;
    assert.equal(frame, expected, `event ${i + 1}`);
  });
  assert.equal(JSON.parse(ws[ws.length - 1] ?? '{}')['exit_code'], 3);
  await c.close();
});

test('after a dropped socket, subscribing from the last seq + 1 delivers every event exactly once', async () => {
  await createSession(server.url, 'ws-resume');
  const run = lines(30, 0.05);
  const first = await Client.open(server.url, 'ws-resume');
  const id = await first.execute('resume', { code: run.code, mode: 'process' });
  await first.waitFor((m) => m['type'] === 'stdout' && m['execution_id'] === id && Number(m['seq']) >= 6, 'some output');
  first.ws.terminate();
  await first.closed;
  const seen = first.events(id);
  const lastSeq = Number(seen[seen.length - 1]?.msg['seq']);

  const second = await Client.open(server.url, 'ws-resume');
  second.send({ type: 'subscribe', execution_id: id, from: lastSeq + 1 });
  await second.done(id);
  const all = [...seen, ...second.events(id)];
  const events = checkStream(all, id);
  assert.equal(stdoutOf(events), run.stdout);
  assert.equal(second.events(id)[0]?.msg['seq'], lastSeq + 1);
  await second.close();
});

test('cancel over the socket kills the program; its done says cancelled', async () => {
  await createSession(server.url, 'ws-cancel');
  const c = await Client.open(server.url, 'ws-cancel');
  const id = await c.execute('long', { code: 'import time\nprint("ready")\ntime.sleep(30)\nprint("never")', mode: 'process' });
  await c.waitFor((m) => m['type'] === 'stdout' && m['execution_id'] === id, 'ready');
  const t0 = performance.now();
  c.send({ type: 'cancel', execution_id: id });
  const done = await c.done(id, 10_000);
  assert.equal(done['reason'], 'cancelled');
  assert.ok(performance.now() - t0 < 5000, 'stopped promptly');
  assert.equal(stdoutOf(checkStream(c.events(id), id)), 'ready\n');
  await c.close();
});

test('stdin over the socket feeds input(); errors name the execution', async () => {
  await createSession(server.url, 'ws-stdin');
  const c = await Client.open(server.url, 'ws-stdin');
  const id = await c.execute('ask', { code: "name = input()\nprint('hi', name)", mode: 'process' });
  c.send({ type: 'stdin', execution_id: id, data: 'Ada\n' });
  const done = await c.done(id);
  assert.equal(done['exit_code'], 0);
  assert.equal(stdoutOf(checkStream(c.events(id), id)), 'hi Ada\n');
  c.send({ type: 'stdin', execution_id: id, data: 'late\n' });
  const late = await c.waitFor((m) => m['type'] === 'error' && m['execution_id'] === id, 'stdin after the end');
  assert.equal(late['code'], 'INVALID_REQUEST');
  c.send({ type: 'stdin', execution_id: 'f'.repeat(32), data: 'x' });
  const missing = await c.waitFor((m) => m['type'] === 'error' && m['execution_id'] === 'f'.repeat(32), 'stdin to nothing');
  assert.equal(missing['code'], 'NOT_FOUND');
  await c.close();
});

test('unsubscribe stops an execution’s events while it runs on', async () => {
  await createSession(server.url, 'ws-unsub');
  const c = await Client.open(server.url, 'ws-unsub');
  const run = lines(15, 0.05);
  const id = await c.execute('u', { code: run.code, mode: 'process' });
  await c.waitFor((m) => m['type'] === 'stdout' && m['execution_id'] === id, 'first line');
  c.send({ type: 'unsubscribe', execution_id: id });
  c.send({ type: 'ping' });
  await c.waitFor((m) => m['type'] === 'pong', 'pong');
  const afterPong = c.events(id).length;
  // Until the run has finished (later than its 0.75 s on a loaded machine), then one more ping:
  // its pong follows whatever the server sent before it, so no event of the run can still come.
  type View = { state: string; stdout: string };
  const view = async (): Promise<View> => (await (await fetch(`${server.url}/api/executions/${id}`)).json()) as View;
  const deadline = performance.now() + 30_000;
  while ((await view()).state !== 'finished') {
    assert.ok(performance.now() < deadline, 'the run finishes within 30 s');
    await sleep(50);
  }
  const pongs = (): number => c.received.filter((r) => r.msg['type'] === 'pong').length;
  const pongsBefore = pongs();
  c.send({ type: 'ping' });
  await c.waitFor((m) => m['type'] === 'pong' && pongs() > pongsBefore, 'second pong');
  assert.equal(c.events(id).length, afterPong, 'nothing more once unsubscribed');
  const finished = await view();
  assert.equal(finished.state, 'finished');
  assert.equal(finished.stdout, run.stdout);
  await c.close();
});

test('malformed messages are answered with error messages; the fifth closes the socket with 4400', async () => {
  await createSession(server.url, 'ws-bad');
  const c = await Client.open(server.url, 'ws-bad');
  // A well-formed message that fails is no malformed message.
  c.send({ type: 'subscribe', execution_id: 'nope' });
  const notFound = await c.waitFor((m) => m['type'] === 'error' && m['execution_id'] === 'nope', 'NOT_FOUND');
  assert.equal(notFound['code'], 'NOT_FOUND');
  c.send('not json');
  c.send('[1,2]');
  c.send({ type: 'launch' });
  c.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
  c.send({ type: 'ping' });
  await c.waitFor((m) => m['type'] === 'pong', 'still open after four');
  const errors = c.received.filter((r) => r.msg['type'] === 'error' && r.msg['code'] === 'INVALID_REQUEST').map((r) => String(r.msg['error']));
  assert.equal(errors.length, 4);
  assert.match(errors[0] ?? '', /^message: expected one JSON object, got malformed JSON/);
  assert.match(errors[1] ?? '', /^message: expected a JSON object, got an array$/);
  assert.match(errors[2] ?? '', /^type: expected one of "execute", .* got "launch" \(string\)$/);
  assert.match(errors[3] ?? '', /binary frame/);
  c.send({ type: 'execute', request_id: 'r', code: 'print(1)', timout: 5 });
  const closed = await c.closed;
  assert.equal(closed.code, 4400);
  assert.match(closed.reason, /5 malformed messages/);
  const last = await c.waitFor((m) => m['request_id'] === 'r', 'the fifth error');
  assert.match(String(last['error']), /^timout: unknown field for type "execute"/);
});

test('a message over the size limit closes the socket with 1009', async () => {
  await createSession(server.url, 'ws-big');
  const c = await Client.open(server.url, 'ws-big');
  c.send({ type: 'execute', request_id: 'big', code: `# ${'x'.repeat(4 * 1024 * 1024)}` });
  assert.equal((await c.closed).code, 1009);
});

test('an unknown session closes with 4404, and so does deleting the session under an open socket', async () => {
  const missing = await Client.open(server.url, 'no-such-session');
  const closed = await missing.closed;
  assert.equal(closed.code, 4404);
  assert.match(closed.reason, /no session with id "no-such-session"/);

  await createSession(server.url, 'ws-doomed');
  const c = await Client.open(server.url, 'ws-doomed');
  const id = await c.execute('sleep', { code: 'import time\nprint("up")\ntime.sleep(30)', mode: 'process' });
  await c.waitFor((m) => m['type'] === 'stdout' && m['execution_id'] === id, 'running');
  assert.equal((await fetch(`${server.url}/api/sessions/ws-doomed`, { method: 'DELETE' })).status, 204);
  const gone = await c.closed;
  assert.equal(gone.code, 4404);
  // Its execution was killed, and the socket said so before closing.
  assert.equal((await c.done(id, 1))['reason'], 'cancelled');

  // Without an upgrade the path answers in the contract's error shape.
  const plain = await fetch(`${server.url}/api/sessions/ws-doomed/ws`);
  assert.equal(plain.status, 400);
  assert.match(((await plain.json()) as { error: { message: string } }).error.message, /expected an upgrade request/);
});

test('an idle socket outlives the HTTP timeouts, gets a ping frame every heartbeat, and answers ping messages', async () => {
  await createSession(server.url, 'ws-idle');
  const c = await Client.open(server.url, 'ws-idle');
  // Past both HTTP timeouts (2 s and 1 s) it is still open...
  await sleep(3200);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  // ...and pinged every second (polled: a loaded machine may deliver the second one late).
  const deadline = performance.now() + 15_000;
  while (c.pings < 2 && performance.now() < deadline) await sleep(50);
  assert.ok(c.pings >= 2, `ping frames every second, got ${c.pings}`);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  c.send({ type: 'ping' });
  await c.waitFor((m) => m['type'] === 'pong', 'pong');
  await c.close();
});

test('a peer that answers no ping frames is closed with 4408', async () => {
  await createSession(server.url, 'ws-deaf');
  const c = await Client.open(server.url, 'ws-deaf', { autoPong: false });
  const closed = await Promise.race([c.closed, sleep(30_000).then(() => null)]);
  assert.ok(closed, 'closed within a few heartbeats');
  assert.equal(closed.code, 4408);
});

test('a client that stops reading: the program runs unslowed and the server buffers a bounded amount for it', async () => {
  await createSession(server.url, 'ws-flood');
  const rss = async (): Promise<number> => {
    const status = await readFile(`/proc/${server.proc.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  };
  const c = await Client.open(server.url, 'ws-flood');
  // 8 MiB of output in a fraction of a second.
  const id = await c.execute('flood', { code: 'import sys\nline = "x" * 1023 + "\\n"\nfor _ in range(8 * 1024):\n    sys.stdout.write(line)\n', mode: 'process' });
  c.ws.pause();
  const t0 = performance.now();
  for (;;) {
    const view = (await (await fetch(`${server.url}/api/sessions/ws-flood`)).json()) as { running_execution: string | null };
    if (view.running_execution === null) break;
    assert.ok(performance.now() - t0 < 30_000, 'the program finishes at its own pace while its reader is stalled');
    await sleep(50);
  }
  // Each subscribe from 1 asks for the whole 8 MiB log again: sent blindly, 30 of them would
  // queue ~250 MiB for a socket nobody reads. Paced, the socket holds about 1 MiB.
  const before = await rss();
  let peak = before;
  for (let i = 0; i < 30; i++) {
    c.send({ type: 'subscribe', execution_id: id, from: 1 });
    await sleep(20);
    peak = Math.max(peak, await rss());
  }
  for (let i = 0; i < 10; i++) {
    await sleep(50);
    peak = Math.max(peak, await rss());
  }
  const grown = peak - before;
  assert.ok(grown < 48 * 1024 * 1024, `server RSS grew by ${Math.round(grown / 1024 / 1024)} MiB`);
  // A peer that reads nothing and answers no pings is dropped (heartbeats are 1 s here): once
  // the client reads again, it finds the end of the connection behind the data.
  await sleep(3500);
  c.ws.resume();
  const closed = await Promise.race([c.closed, sleep(5000).then(() => null)]);
  assert.ok(closed, 'the stalled socket was closed by the server');
  assert.ok(closed.code === 4408 || closed.code === 1006, `closed with ${closed.code}`);
});

test('with API keys: 4401 without a valid key; the header and the subprotocol both work; another tenant sees 4404', async () => {
  const alice = { authorization: `Bearer ${ALICE}` };
  await createSession(authServer.url, 'alice-ws', alice);

  const anonymous = await Client.open(authServer.url, 'alice-ws');
  assert.equal((await anonymous.closed).code, 4401);
  const wrong = await Client.open(authServer.url, 'alice-ws', { headers: { authorization: 'Bearer not-a-key-0123456789' } });
  const wrongClose = await wrong.closed;
  assert.equal(wrongClose.code, 4401);
  assert.match(wrongClose.reason, /not valid/);

  const byHeader = await Client.open(authServer.url, 'alice-ws', { headers: alice });
  const id = await byHeader.execute('h', { code: 'print(6 * 7)', mode: 'process' });
  await byHeader.done(id);
  assert.equal(stdoutOf(checkStream(byHeader.events(id), id)), '42\n');

  const byProtocol = await Client.open(authServer.url, 'alice-ws', { protocols: ['sluice', `sluice.auth.${Buffer.from(ALICE).toString('base64url')}`] });
  assert.equal(byProtocol.ws.protocol, 'sluice', 'the server selects "sluice", never echoes the key');
  byProtocol.send({ type: 'subscribe', execution_id: id });
  await byProtocol.done(id);
  const badProtocol = await Client.open(authServer.url, 'alice-ws', { protocols: ['sluice', `sluice.auth.${Buffer.from(BOB.slice(0, -1)).toString('base64url')}`] });
  assert.equal((await badProtocol.closed).code, 4401);

  // Bob: alice's session looks missing, and so do her executions.
  const bobSees = await Client.open(authServer.url, 'alice-ws', { headers: { authorization: `Bearer ${BOB}` } });
  assert.equal((await bobSees.closed).code, 4404);
  await createSession(authServer.url, 'bob-ws', { authorization: `Bearer ${BOB}` });
  const bob = await Client.open(authServer.url, 'bob-ws', { headers: { authorization: `Bearer ${BOB}` } });
  bob.send({ type: 'subscribe', execution_id: id });
  assert.equal((await bob.waitFor((m) => m['type'] === 'error', 'NOT_FOUND'))['code'], 'NOT_FOUND');
  bob.send({ type: 'cancel', execution_id: id });
  bob.send({ type: 'ping' });
  await bob.waitFor((m) => m['type'] === 'pong', 'pong');
  assert.deepEqual(
    bob.received.filter((r) => r.msg['type'] === 'error').map((r) => r.msg['code']),
    ['NOT_FOUND', 'NOT_FOUND'],
  );

  // Two sockets per tenant on this server: alice's third is refused, bob still gets one more.
  const third = await Client.open(authServer.url, 'alice-ws', { headers: alice });
  const refused = await third.closed;
  assert.equal(refused.code, 4429);
  assert.match(refused.reason, /this API key has 2 WebSockets open/);
  const bob2 = await Client.open(authServer.url, 'bob-ws', { headers: { authorization: `Bearer ${BOB}` } });
  bob2.send({ type: 'ping' });
  await bob2.waitFor((m) => m['type'] === 'pong', 'pong');
  await Promise.all([byHeader.close(), byProtocol.close(), bob.close(), bob2.close()]);
});

test('server shutdown sends the running execution’s done, then closes sockets with 1001', async () => {
  const own = await startServer();
  try {
    await createSession(own.url, 'ws-shutdown');
    const c = await Client.open(own.url, 'ws-shutdown');
    const id = await c.execute('s', { code: 'import time\nprint("working")\ntime.sleep(0.5)\nprint("finished")', mode: 'process' });
    await c.waitFor((m) => m['type'] === 'stdout' && m['execution_id'] === id, 'running');
    const stopping = own.stop();
    const closed = await c.closed;
    assert.equal(closed.code, 1001);
    assert.equal(stdoutOf(checkStream(c.events(id), id)), 'working\nfinished\n');
    await stopping;
  } finally {
    await own.stop();
  }
});

test('a shutdown that waits out a kill grace still closes sockets with 1001, not as if their session had been deleted', async () => {
  const own = await startServer();
  try {
    await createSession(own.url, 'ws-shutdown-grace');
    const c = await Client.open(own.url, 'ws-shutdown-grace');
    // Ignores SIGTERM: shutdown waits the whole kill grace (2 s, past the 1 s session sweep).
    const code = 'import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: None)\nprint("working", flush=True)\ntime.sleep(60)';
    const id = await c.execute('g', { code, mode: 'process' });
    await c.waitFor((m) => m['type'] === 'stdout' && m['execution_id'] === id, 'running');
    const stopping = own.stop();
    const closed = await c.closed;
    assert.equal(closed.code, 1001);
    assert.equal(c.events(id).at(-1)?.msg['type'], 'done', 'the execution ended with its done before the close');
    await stopping;
  } finally {
    await own.stop();
  }
});

test('subscribe from past the end of a finished log is answered with end (HTTP answers 204 there)', async () => {
  await createSession(server.url, 'ws-end');
  const c = await Client.open(server.url, 'ws-end');
  const id = await c.execute('e', { code: 'echo hi', language: 'bash' });
  const done = await c.done(id);
  const lastSeq = Number(done['seq']);
  c.send({ type: 'subscribe', execution_id: id, from: lastSeq + 1 });
  const end = await c.waitFor((m) => m['type'] === 'end', 'end');
  assert.deepEqual(end, { type: 'end', execution_id: id, last_seq: lastSeq });
  // From inside the log it is events as usual, done last, and no end.
  const before = c.events(id).length;
  c.send({ type: 'subscribe', execution_id: id, from: lastSeq });
  await c.waitFor((m) => m['type'] === 'done' && c.events(id).length > before, 'the done again');
  c.send({ type: 'ping' });
  await c.waitFor((m) => m['type'] === 'pong', 'pong');
  assert.equal(c.received.filter((r) => r.msg['type'] === 'end').length, 1);
  await c.close();
});
