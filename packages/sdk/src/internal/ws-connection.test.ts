import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionEvent } from '@sluice/protocol';
import { ConnectionError, InvalidRequestError, NotFoundError, RateLimitedError, SessionBusyError, UnauthorizedError, UnsupportedLanguageError } from '../errors.js';
import type { WebSocketLike } from '../web-socket.js';
import { WSConnection, type WSConnectionOptions } from './ws-connection.js';
import type { WSExecutionSource } from './ws-execution-source.js';

// The fakes hold no socket: keep the event loop up while a test awaits them.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

type Listener = (event: never) => void;

/** An in-memory WebSocket: the test plays the server. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  bufferedAmount = 0;
  sent: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  private listeners = new Map<string, Listener[]>();
  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005;
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.emit('close', { code: code ?? 1005, reason: '' }));
  }
  addEventListener(type: string, listener: Listener): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener);
    this.listeners.set(type, list);
  }
  // The server's side:
  open(): void {
    this.readyState = 1;
    this.emit('open', {});
  }
  receive(msg: unknown): void {
    this.emit('message', { data: JSON.stringify(msg) });
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.emit('close', { code, reason });
  }
  sentOf(type: string): Record<string, unknown>[] {
    return this.sent.filter((m) => m['type'] === type);
  }
  private emit(type: string, event: unknown): void {
    for (const l of this.listeners.get(type) ?? []) (l as (e: unknown) => void)(event);
  }
}

/** Connections of the current test, closed after it so that no late timer of theirs dials into the next. */
const connections: WSConnection[] = [];
afterEach(() => {
  for (const c of connections.splice(0)) c.close();
});

/**
 * Waits until `cond` holds. Tests poll rather than sleep a fixed time: on a loaded machine Node
 * may run a 20 ms timer before a 1 ms one scheduled just before it.
 */
async function until(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`still not ${what} after ${timeoutMs} ms`);
    await sleep(1);
  }
}

function connection(over: Partial<WSConnectionOptions> = {}): WSConnection {
  FakeSocket.all = [];
  const conn = new WSConnection({
    url: 'ws://sluice.test/api/sessions/s1/ws',
    protocols: ['sluice', 'sluice.auth.a2V5'],
    WebSocket: FakeSocket,
    reconnect: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 },
    queue: { maxEvents: 1000, maxBytes: 1 << 20 },
    idleTimeoutMs: 20,
    pingIntervalMs: 0,
    ...over,
  });
  connections.push(conn);
  return conn;
}

function socket(i = -1): FakeSocket {
  const s = FakeSocket.all.at(i);
  if (!s) throw new Error('no socket');
  return s;
}

function out(exec: string, seq: number, content = `${exec}:${seq}\n`): Record<string, unknown> {
  return { type: 'stdout', seq, ts: 1, content, execution_id: exec };
}
function done(exec: string, seq: number): Record<string, unknown> {
  return { type: 'done', seq, ts: 1, exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited', execution_id: exec };
}

async function take(s: WSExecutionSource, n: number): Promise<ExecutionEvent[]> {
  const got: ExecutionEvent[] = [];
  while (got.length < n) {
    const e = await s.next();
    if (e === null) break;
    got.push(e);
  }
  return got;
}

function requestIDOf(s: FakeSocket, i: number): string {
  return String(s.sentOf('execute')[i]?.['request_id']);
}

test('one socket, opened lazily with the auth subprotocol, carries two executions without mixing them', async () => {
  const conn = connection();
  assert.equal(FakeSocket.all.length, 0);
  const a = conn.execute({ code: 'a' });
  const b = conn.execute({ code: 'b' });
  assert.equal(FakeSocket.all.length, 1);
  const ws = socket();
  assert.deepEqual(ws.protocols, ['sluice', 'sluice.auth.a2V5']);
  ws.open();
  assert.equal(ws.sentOf('execute').length, 2);
  ws.receive({ type: 'accepted', request_id: requestIDOf(ws, 0), execution_id: 'A' });
  ws.receive({ type: 'accepted', request_id: requestIDOf(ws, 1), execution_id: 'B' });
  ws.receive(out('A', 1));
  ws.receive(out('B', 1));
  ws.receive(out('B', 2));
  ws.receive(out('A', 2));
  ws.receive(done('A', 3));
  ws.receive(done('B', 3));
  assert.equal(await a.executionID, 'A');
  assert.equal(await b.executionID, 'B');
  const ea = await take(a, 10);
  const eb = await take(b, 10);
  assert.deepEqual(ea.map((e) => e.seq), [1, 2, 3]);
  assert.deepEqual(eb.map((e) => e.seq), [1, 2, 3]);
  assert.ok(ea.every((e) => e.type !== 'stdout' || e.content.startsWith('A:')));
  assert.ok(eb.every((e) => e.type !== 'stdout' || e.content.startsWith('B:')));
  a.close();
  b.close();
});

test('a dropped socket is reopened and each live stream resubscribes from its next seq; duplicates are dropped', async () => {
  const conn = connection();
  const a = conn.execute({ code: 'a' });
  let ws = socket();
  ws.open();
  ws.receive({ type: 'accepted', request_id: requestIDOf(ws, 0), execution_id: 'A' });
  ws.receive(out('A', 1));
  ws.receive(out('A', 2));
  ws.drop();
  await until(() => FakeSocket.all.length === 2, 'reopened');
  ws = socket();
  ws.open();
  assert.deepEqual(ws.sentOf('subscribe'), [{ type: 'subscribe', execution_id: 'A', from: 3 }]);
  assert.equal(ws.sentOf('execute').length, 0, 'an accepted execute is never sent again');
  ws.receive(out('A', 2)); // a replayed duplicate
  ws.receive(out('A', 3));
  ws.receive(done('A', 4));
  assert.deepEqual((await take(a, 10)).map((e) => e.seq), [1, 2, 3, 4]);
});

test('after a resubscription, events of the old subscription that overtake the replay are dropped, not skipped to', async () => {
  const conn = connection({ queue: { maxEvents: 4, maxBytes: 1 << 20 } });
  const a = conn.attach('A', 1);
  const ws = socket();
  ws.open();
  for (let seq = 1; seq <= 5; seq++) ws.receive(out('A', seq)); // 5 overflows: unsubscribe
  assert.deepEqual(ws.sentOf('unsubscribe'), [{ type: 'unsubscribe', execution_id: 'A' }]);
  ws.receive(out('A', 6)); // in flight while paused: dropped
  assert.deepEqual((await take(a, 2)).map((e) => e.seq), [1, 2]); // drained to half: subscribe from 5
  assert.deepEqual(ws.sentOf('subscribe').at(-1), { type: 'subscribe', execution_id: 'A', from: 5 });
  ws.receive(out('A', 6)); // still in flight from the first subscription, ahead of the replay
  ws.receive(out('A', 5)); // the replay
  ws.receive(out('A', 6));
  assert.deepEqual((await take(a, 4)).map((e) => e.seq), [3, 4, 5, 6]);
  ws.receive(done('A', 7));
  assert.deepEqual((await take(a, 10)).map((e) => e.seq), [7]);
  conn.close();
});

test('an execute whose socket dropped before accepted fails instead of running twice', async () => {
  const conn = connection();
  const a = conn.execute({ code: 'a' });
  socket().open();
  socket().drop();
  await assert.rejects(a.next(), (err: unknown) => err instanceof ConnectionError && /never runs twice/.test(err.message));
});

test('a refused execute rejects with the typed error of its code', async () => {
  const conn = connection();
  const a = conn.execute({ code: 'a' });
  const ws = socket();
  ws.open();
  ws.receive({ type: 'error', request_id: requestIDOf(ws, 0), code: 'SESSION_BUSY', error: 'queue full' });
  await assert.rejects(a.next(), SessionBusyError);
  await assert.rejects(a.executionID, SessionBusyError);
});

test('a refused execute names its request_id in the typed error', async () => {
  const conn = connection();
  const a = conn.execute({ code: 'a' });
  const ws = socket();
  ws.open();
  const id = requestIDOf(ws, 0);
  ws.receive({ type: 'error', request_id: id, code: 'UNSUPPORTED_LANGUAGE', error: 'no cobol' });
  await assert.rejects(a.next(), (err: unknown) => err instanceof UnsupportedLanguageError && err.requestID === id && err.status === 422);
});

test('a run refused with 4404 at the upgrade creates the session once and is sent on the next socket', async () => {
  let created = 0;
  const conn = connection({ createSession: async () => void created++ });
  const a = conn.execute({ code: 'a' });
  socket().open(); // the upgrade is accepted, then closed at once: the execute was never read
  socket().drop(4404, 'no session with id "s1"');
  await until(() => FakeSocket.all.length === 2, 'dialled again after creating the session');
  assert.equal(created, 1);
  const ws = socket();
  ws.open();
  assert.equal(ws.sentOf('execute').length, 1, 'the run goes out on the new socket');
  ws.receive({ type: 'accepted', request_id: requestIDOf(ws, 0), execution_id: 'A' });
  ws.receive(done('A', 1));
  assert.deepEqual((await take(a, 10)).map((e) => e.seq), [1]);
  conn.close();
});

test('a second 4404 right after creating the session, or one without a run waiting, is NotFoundError', async () => {
  let created = 0;
  const conn = connection({ createSession: async () => void created++ });
  const a = conn.execute({ code: 'a' });
  socket().open();
  socket().drop(4404, 'gone');
  await until(() => FakeSocket.all.length === 2, 'dialled again after creating the session');
  socket().open();
  socket().drop(4404, 'gone');
  await assert.rejects(a.next(), (err: unknown) => err instanceof NotFoundError && err.message === 'gone');
  assert.equal(created, 1);
  const b = conn.attach('B', 1); // following only: nothing to create the session for
  socket().open();
  socket().drop(4404, 'gone');
  await assert.rejects(b.next(), NotFoundError);
  assert.equal(created, 1);
});

test('a run on a socket refused with 4401 fails with UnauthorizedError, not a maybe-started ConnectionError', async () => {
  const conn = connection();
  const a = conn.execute({ code: 'a' });
  socket().open();
  socket().drop(4401, 'bad key');
  await assert.rejects(a.next(), (err: unknown) => err instanceof UnauthorizedError && err.message === 'bad key');
});

test('a run on a socket refused with 4429 (too many sockets) is sent again on the next one', async () => {
  const conn = connection();
  const a = conn.execute({ code: 'a' });
  socket().open();
  socket().drop(4429, 'too many sockets');
  await until(() => FakeSocket.all.length === 2, 'dialled again');
  const ws = socket();
  ws.open();
  assert.equal(ws.sentOf('execute').length, 1);
  ws.receive({ type: 'accepted', request_id: requestIDOf(ws, 0), execution_id: 'A' });
  ws.receive(done('A', 1));
  assert.deepEqual((await take(a, 10)).map((e) => e.seq), [1]);
  conn.close();
});

test('close code 4401 fails every stream with UnauthorizedError, without retrying', async () => {
  const conn = connection();
  const a = conn.attach('A', 1);
  socket().drop(4401, 'bad key');
  await assert.rejects(a.next(), (err: unknown) => err instanceof UnauthorizedError && err.message === 'bad key');
  await sleep(10);
  assert.equal(FakeSocket.all.length, 1);
});

test('reconnection gives up after maxAttempts', async () => {
  const conn = connection();
  const a = conn.attach('A', 1);
  for (let n = 1; n <= 4; n++) {
    socket().drop();
    if (n < 4) await until(() => FakeSocket.all.length === n + 1, `redialled after drop ${n}`);
  }
  await assert.rejects(a.next(), (err: unknown) => err instanceof ConnectionError && /reconnect\.maxAttempts/.test(err.message));
  assert.equal(FakeSocket.all.length, 4, 'the first socket and three retries');
});

test('a full queue unsubscribes and drops the excess; draining resubscribes from the first seq not queued', async () => {
  const conn = connection({ queue: { maxEvents: 4, maxBytes: 1 << 20 } });
  const a = conn.attach('A', 1);
  const ws = socket();
  ws.open();
  assert.deepEqual(ws.sentOf('subscribe'), [{ type: 'subscribe', execution_id: 'A', from: 1 }]);
  for (let seq = 1; seq <= 20; seq++) ws.receive(out('A', seq)); // a flood nobody reads
  assert.deepEqual(ws.sentOf('unsubscribe'), [{ type: 'unsubscribe', execution_id: 'A' }]);
  assert.equal(a.peak.events, 4, 'the queue never held more than its bound');
  const first = await take(a, 2);
  assert.deepEqual(first.map((e) => e.seq), [1, 2]);
  assert.deepEqual(ws.sentOf('subscribe').at(-1), { type: 'subscribe', execution_id: 'A', from: 5 });
  for (let seq = 5; seq <= 8; seq++) ws.receive(out('A', seq)); // 5 and 6 fit; 7 overflows again
  ws.receive(done('A', 9));
  assert.equal(ws.sentOf('unsubscribe').length, 2);
  assert.deepEqual((await take(a, 2)).map((e) => e.seq), [3, 4]);
  assert.deepEqual(ws.sentOf('subscribe').at(-1), { type: 'subscribe', execution_id: 'A', from: 7 });
  ws.receive(out('A', 6)); // still in flight from before: a duplicate
  ws.receive(out('A', 7));
  ws.receive(out('A', 8));
  ws.receive(done('A', 9)); // the queue holds 5–8: full once more
  assert.deepEqual((await take(a, 4)).map((e) => e.seq), [5, 6, 7, 8]);
  assert.deepEqual(ws.sentOf('subscribe').at(-1), { type: 'subscribe', execution_id: 'A', from: 9 });
  ws.receive(done('A', 9));
  assert.deepEqual((await take(a, 10)).map((e) => e.seq), [9]);
  assert.equal(await a.next(), null);
  assert.ok(a.peak.events <= 4);
});

test('the socket closes itself when idle and reopens on the next stream', async () => {
  const conn = connection({ idleTimeoutMs: 10 });
  const a = conn.attach('A', 1);
  const ws = socket();
  ws.open();
  ws.receive(done('A', 1));
  await take(a, 1);
  a.close();
  await until(() => ws.closedWith === 1000, 'closed when idle');
  conn.attach('B', 1);
  assert.equal(FakeSocket.all.length, 2);
  conn.close();
});

test('cancel and stdin wait for the socket, name the execution, and resolve at the pong that follows them', async () => {
  const conn = connection();
  const a = conn.attach('A', 1);
  let settled = false;
  const sent = Promise.all([a.cancel(), a.stdin('x', true)]).then(() => (settled = true));
  const ws = socket();
  ws.open();
  await sleep(0);
  assert.deepEqual(ws.sentOf('cancel'), [{ type: 'cancel', execution_id: 'A' }]);
  assert.deepEqual(ws.sentOf('stdin'), [{ type: 'stdin', execution_id: 'A', data: 'x', eof: true }]);
  assert.equal(ws.sentOf('ping').length, 3, 'one ping after the subscribe and after each command');
  ws.receive({ type: 'pong' }); // the subscribe's
  ws.receive({ type: 'pong' }); // the cancel's
  await sleep(0);
  assert.equal(settled, false, 'the stdin is not answered yet');
  ws.receive({ type: 'pong' });
  await sent;
  conn.close();
  await assert.rejects(a.next(), ConnectionError);
});

test("a refused stdin rejects with the server's typed error and the stream goes on", async () => {
  const conn = connection();
  const a = conn.attach('A', 1);
  const ws = socket();
  ws.open();
  ws.receive({ type: 'pong' }); // the subscribe was taken
  const write = a.stdin('late', false);
  await sleep(0);
  ws.receive({ type: 'error', execution_id: 'A', code: 'INVALID_REQUEST', error: 'stdin is closed' });
  ws.receive({ type: 'pong' });
  await assert.rejects(write, (err: unknown) => err instanceof InvalidRequestError && err.message === 'stdin is closed');
  ws.receive(out('A', 1));
  ws.receive(done('A', 2));
  assert.deepEqual((await take(a, 10)).map((e) => e.seq), [1, 2]);
});

test('a refused subscribe ends its stream with the typed error; a command cut by a drop rejects', async () => {
  const conn = connection();
  const a = conn.attach('A', 1);
  const b = conn.attach('B', 1);
  const ws = socket();
  ws.open();
  ws.receive({ type: 'error', execution_id: 'A', code: 'NOT_FOUND', error: 'no execution A' });
  ws.receive({ type: 'pong' });
  ws.receive({ type: 'error', execution_id: 'B', code: 'RATE_LIMITED', error: 'this socket follows 64 executions' });
  await assert.rejects(a.next(), NotFoundError);
  await assert.rejects(b.next(), RateLimitedError);
  const c = conn.attach('C', 1);
  ws.receive({ type: 'pong' }); // B's
  ws.receive({ type: 'pong' }); // C's subscribe
  const cancel = c.cancel();
  await sleep(0);
  ws.drop();
  await assert.rejects(cancel, (err: unknown) => err instanceof ConnectionError && /before the server confirmed the cancel/.test(err.message));
  conn.close();
});

test('a socket that stops answering pings is reopened', async () => {
  const conn = connection({ pingIntervalMs: 10 });
  conn.attach('A', 1);
  socket().open();
  await until(() => FakeSocket.all.length >= 2, 'a new socket was dialled');
  assert.ok(socket(0).sentOf('ping').length >= 1);
  assert.equal(socket(0).closedWith, 4000);
  assert.ok(FakeSocket.all.length >= 2, 'a new socket was dialled');
  socket().open();
  assert.deepEqual(socket().sentOf('subscribe'), [{ type: 'subscribe', execution_id: 'A', from: 1 }]);
  conn.close();
});
