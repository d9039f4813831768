import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError, SessionBusyError, TimeoutError } from '../errors.js';
import { HTTPClient, type FetchFunction } from './http-client.js';

// The fake fetches hold no socket and the client's deadline timers are unref'd: keep the loop up.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

function client(fetch: FetchFunction, timeoutMs = 1000): HTTPClient {
  return new HTTPClient({ baseURL: 'http://sluice.test/prefix/', apiKey: 'k', fetch, timeoutMs, headers: {} });
}

function headersOf(init: RequestInit | undefined): Record<string, string> {
  return { ...(init?.headers as Record<string, string> | undefined) };
}

test('every request carries the bearer key and its own X-Request-Id, under the base path', async () => {
  const seen: { url: string; headers: Record<string, string> }[] = [];
  const http = client(async (url, init) => {
    seen.push({ url, headers: headersOf(init) });
    return new Response('{"ok":true}', { status: 200 });
  });
  assert.deepEqual(await http.json('GET', '/api/sessions', { query: { dir: 'a b', none: undefined } }), { ok: true });
  await http.json('GET', '/api/sessions');
  assert.equal(seen[0]?.url, 'http://sluice.test/prefix/api/sessions?dir=a+b');
  assert.equal(seen[0]?.headers['authorization'], 'Bearer k');
  assert.match(seen[0]?.headers['x-request-id'] ?? '', /^[0-9a-f]{32}$/);
  assert.notEqual(seen[0]?.headers['x-request-id'], seen[1]?.headers['x-request-id']);
});

test("an error names the request: the server's Request-Id when it sends one, else the X-Request-Id sent", async () => {
  let sent = '';
  const busy = (headers: Record<string, string>): FetchFunction => async (_url, init) => {
    sent = headersOf(init)['x-request-id'] ?? '';
    return new Response(JSON.stringify({ error: { code: 'SESSION_BUSY', message: 'queue full' } }), { status: 409, headers });
  };
  await assert.rejects(client(busy({ 'retry-after': '1' })).json('POST', '/x'), (err: unknown) => err instanceof SessionBusyError && err.requestID === sent && err.retryAfter === 1);
  await assert.rejects(client(busy({ 'request-id': 'srv-1' })).json('POST', '/x'), (err: unknown) => err instanceof SessionBusyError && err.requestID === 'srv-1');
});

test('a network failure is a ConnectionError and a missed deadline a TimeoutError, both naming the request', async () => {
  let sent = '';
  const refused: FetchFunction = async (_url, init) => {
    sent = headersOf(init)['x-request-id'] ?? '';
    throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
  };
  await assert.rejects(client(refused).json('GET', '/y'), (err: unknown) => err instanceof ConnectionError && err.requestID === sent && /ECONNREFUSED/.test(err.message));
  const hangs: FetchFunction = (_url, init) =>
    new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
  await assert.rejects(client(hangs, 20).json('GET', '/z'), (err: unknown) => err instanceof TimeoutError && typeof err.requestID === 'string' && /20 ms/.test(err.message));
});

test("the caller's abort rejects with its own reason, not a typed error", async () => {
  const hangs: FetchFunction = (_url, init) =>
    new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
  const ac = new AbortController();
  const p = client(hangs).json('GET', '/w', { signal: ac.signal });
  ac.abort(new Error('mine'));
  await assert.rejects(p, /mine/);
});
