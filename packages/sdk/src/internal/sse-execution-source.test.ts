import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeEventSSE, type ExecutionEvent } from '@sluice/protocol';
import { ConnectionError, SessionBusyError } from '../errors.js';
import { HTTPClient, type FetchFunction } from './http-client.js';
import { SSEExecutionSource, type SSEStart } from './sse-execution-source.js';

// The fakes hold no socket: keep the event loop up while a test awaits them.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

const ID = 'exec-1';

function ev(seq: number, type: 'start' | 'stdout' | 'done' = 'stdout'): ExecutionEvent {
  if (type === 'start') return { type, seq, ts: 1, execution_id: ID, session_id: 's', language: 'python', mode: 'process' };
  if (type === 'done') return { type, seq, ts: 1, exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited' };
  return { type, seq, ts: 1, content: `line ${seq}\n` };
}

/** A log of `n` events: start, stdout…, done. */
function log(n: number): ExecutionEvent[] {
  return Array.from({ length: n }, (_, i) => ev(i + 1, i === 0 ? 'start' : i === n - 1 ? 'done' : 'stdout'));
}

function frames(events: readonly ExecutionEvent[]): string {
  return events.map((e) => encodeEventSSE(e.seq, e.type, JSON.stringify(e))).join('');
}

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/** A fetch answering each call with the next handler's Response. */
function fakeFetch(handlers: ((call: Call) => Response | Promise<Response>)[]): { fetch: FetchFunction; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: FetchFunction = async (input, init) => {
    const call: Call = { method: init?.method ?? 'GET', url: input, headers: { ...(init?.headers as Record<string, string>) } };
    calls.push(call);
    const h = handlers[Math.min(calls.length - 1, handlers.length - 1)];
    if (!h) throw new Error('no handler');
    return h(call);
  };
  return { fetch, calls };
}

function sse(body: string | ReadableStream<Uint8Array>, status = 200): Response {
  return new Response(body, { status, headers: { 'content-type': 'text/event-stream', 'sluice-execution-id': ID } });
}

/** A body delivering `text` in chunks of `size` bytes, then ending (or staying open). */
function chunked(text: string, size: number, end = true): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let pos = 0;
  return new ReadableStream({
    pull(c) {
      if (pos >= bytes.length) {
        if (end) c.close();
        return end ? undefined : new Promise(() => {});
      }
      c.enqueue(bytes.slice(pos, pos + size));
      pos += size;
      return undefined;
    },
  });
}

const RUN: SSEStart = { kind: 'run', sessionID: 's1', body: { code: 'print(1)' }, idempotencyKey: 'key-1' };
const OPTS = { reconnect: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 }, heartbeatTimeoutMs: 5000, commandTimeoutMs: 1000 };

function source(fetch: FetchFunction, start: SSEStart = RUN, opts = OPTS): SSEExecutionSource {
  return new SSEExecutionSource(new HTTPClient({ baseURL: 'http://sluice.test', apiKey: 'k', fetch, timeoutMs: 1000, headers: {} }), start, opts);
}

async function drain(s: SSEExecutionSource): Promise<ExecutionEvent[]> {
  const out: ExecutionEvent[] = [];
  for (let e = await s.next(); e !== null; e = await s.next()) out.push(e);
  return out;
}

test('events split at every byte boundary arrive whole, in order, with multi-byte characters intact', async () => {
  const events = log(5).map((e) => (e.type === 'stdout' ? { ...e, content: `héllo ✓ ${e.seq}\r\n` } : e));
  const { fetch, calls } = fakeFetch([() => sse(chunked(`retry: 1000\n\n: ping\n\n${frames(events)}`, 1))]);
  const s = source(fetch);
  assert.deepEqual(await drain(s), events);
  assert.equal(await s.executionID, ID);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]?.method, 'POST');
  assert.equal(calls[0]?.url, 'http://sluice.test/api/sessions/s1/stream');
  assert.equal(calls[0]?.headers['idempotency-key'], 'key-1');
  assert.equal(calls[0]?.headers['authorization'], 'Bearer k');
});

test('a body that ends before done is resumed after the last seq, and the overlap is dropped', async () => {
  const all = log(6);
  const { fetch, calls } = fakeFetch([() => sse(frames(all.slice(0, 3))), () => sse(frames(all.slice(1)))]);
  assert.deepEqual(await drain(source(fetch)), all);
  assert.equal(calls.length, 2);
  assert.equal(calls[1]?.method, 'GET');
  assert.equal(calls[1]?.url, `http://sluice.test/api/executions/${ID}/events`);
  assert.equal(calls[1]?.headers['last-event-id'], '3');
});

test('a start lost on the network is retried with the same Idempotency-Key, and its replay is deduplicated', async () => {
  const all = log(4);
  const { fetch, calls } = fakeFetch([
    () => Promise.reject(new TypeError('fetch failed')),
    () => sse(frames(all)),
  ]);
  assert.deepEqual(await drain(source(fetch)), all);
  assert.equal(calls.length, 2);
  assert.equal(calls[1]?.method, 'POST');
  assert.equal(calls[1]?.headers['idempotency-key'], calls[0]?.headers['idempotency-key']);
});

test('a refused start throws its typed error at once, without retrying', async () => {
  const { fetch, calls } = fakeFetch([
    () => new Response(JSON.stringify({ error: { code: 'SESSION_BUSY', message: 'the queue is full' } }), { status: 409, headers: { 'retry-after': '1' } }),
  ]);
  const s = source(fetch);
  await assert.rejects(s.next(), (err: unknown) => err instanceof SessionBusyError && err.retryAfter === 1);
  await assert.rejects(s.executionID, SessionBusyError);
  assert.equal(calls.length, 1);
});

test('reconnection gives up after maxAttempts with a ConnectionError naming the option', async () => {
  const { fetch, calls } = fakeFetch([() => Promise.reject(new TypeError('fetch failed'))]);
  await assert.rejects(source(fetch).next(), (err: unknown) => err instanceof ConnectionError && /after 3 reconnection attempts \(reconnect\.maxAttempts\)/.test(err.message));
  assert.equal(calls.length, 4, 'the first try and three retries');
});

test('progress resets the attempt budget: many drops, each after a new event, still complete', async () => {
  const all = log(10);
  // Each connection delivers one new event then drops.
  const { fetch, calls } = fakeFetch(all.map((_, i) => () => sse(frames(all.slice(Math.max(0, i - 1), i + 1)))));
  assert.deepEqual(await drain(source(fetch)), all);
  assert.equal(calls.length, 10);
});

test('a silent connection (no event, no heartbeat) is taken for dead and resumed', async () => {
  const all = log(3);
  const { fetch, calls } = fakeFetch([() => sse(chunked(frames(all.slice(0, 1)), 1 << 20, false)), () => sse(frames(all.slice(1)))]);
  const s = source(fetch, RUN, { ...OPTS, heartbeatTimeoutMs: 50 });
  assert.deepEqual(await drain(s), all);
  assert.equal(calls[1]?.headers['last-event-id'], '1');
});

test('the body is read only as fast as the consumer pulls', async () => {
  let pulls = 0;
  let seq = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        pulls++;
        seq++;
        c.enqueue(new TextEncoder().encode(frames([ev(seq, seq === 1 ? 'start' : 'stdout')])));
      },
    },
    { highWaterMark: 0 },
  );
  const { fetch } = fakeFetch([() => sse(body)]);
  const s = source(fetch);
  for (let i = 0; i < 5; i++) {
    await s.next();
    await sleep(5);
  }
  assert.ok(pulls <= 7, `read ${pulls} chunks for 5 events`);
  s.close();
});

test('attaching past the end of a finished log (204) ends the stream', async () => {
  const { fetch, calls } = fakeFetch([() => new Response(null, { status: 204 })]);
  const s = source(fetch, { kind: 'attach', executionID: ID, from: 9 });
  assert.equal(await s.next(), null);
  assert.equal(calls[0]?.headers['last-event-id'], '8');
});

test('close() during a pending read ends it with null and cancels the body', async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull: () => new Promise(() => {}),
    cancel: () => {
      cancelled = true;
    },
  });
  const { fetch } = fakeFetch([() => sse(body)]);
  const s = source(fetch);
  const pending = s.next();
  await sleep(10);
  s.close();
  assert.equal(await pending, null);
  await sleep(1);
  assert.ok(cancelled);
});

test('cancel and stdin go to the execution the start named', async () => {
  const { fetch, calls } = fakeFetch([
    () => sse(chunked(frames(log(2).slice(0, 1)), 1 << 20, false)),
    () => new Response('{}', { status: 202 }),
    () => new Response('{}', { status: 202 }),
  ]);
  const s = source(fetch);
  await s.next();
  await s.stdin('abc', true);
  await s.cancel();
  s.close();
  assert.equal(calls[1]?.url, `http://sluice.test/api/executions/${ID}/stdin`);
  assert.equal(calls[2]?.url, `http://sluice.test/api/executions/${ID}/cancel`);
});
