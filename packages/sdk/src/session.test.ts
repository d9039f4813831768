import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sluice } from './client.js';
import type { WebSocketLike } from './web-socket.js';

/** Counts the sockets and requests a client makes; neither ever answers. */
function recordingClient(): { sluice: Sluice; sockets: string[]; requests: string[] } {
  const sockets: string[] = [];
  const requests: string[] = [];
  class NeverOpens implements WebSocketLike {
    readyState = 0;
    bufferedAmount = 0;
    constructor(url: string) {
      sockets.push(url);
    }
    send(): void {}
    close(): void {
      this.readyState = 3;
    }
    addEventListener(): void {}
  }
  const sluice = new Sluice({
    baseURL: 'http://sluice.test',
    WebSocket: NeverOpens,
    fetch: async (url, init) => {
      requests.push(`${init?.method ?? 'GET'} ${url}`);
      return new Response('{}', { status: 500 });
    },
  });
  return { sluice, sockets, requests };
}

test('a run whose signal is already aborted sends nothing and rejects with the reason, on both transports', async () => {
  for (const transport of ['sse', 'websocket'] as const) {
    const { sluice, sockets, requests } = recordingClient();
    const reason = new Error(`stop ${transport}`);
    const stream = sluice.session('s1').stream('print(1)', { transport, signal: AbortSignal.abort(reason) });
    await assert.rejects(stream.result(), reason);
    await assert.rejects(stream.executionID, reason);
    await assert.rejects(sluice.session('s1').run('print(1)', { transport, signal: AbortSignal.abort(reason) }), reason);
    assert.deepEqual(sockets, [], 'no socket was opened');
    assert.deepEqual(requests, [], 'no request was sent');
    sluice.close();
  }
});

test('options are checked where they enter, naming the option', () => {
  const { sluice } = recordingClient();
  const s = sluice.session('s1');
  assert.throws(() => s.stream('x', { mode: 'notebook' as 'kernel' }), /mode: expected "kernel" or "process", got "notebook"/);
  assert.throws(() => s.stream('x', { timeout: -1 }), /timeout: expected seconds > 0, got -1/);
  assert.throws(() => s.stream('x', { transport: 'grpc' as 'sse' }), /transport: expected "sse" or "websocket", got "grpc"/);
  assert.throws(() => s.attach('E', { from: 0 }), /from: expected the first seq wanted, an integer >= 1, got 0/);
  assert.throws(() => sluice.session('../etc'), TypeError);
  assert.throws(() => new Sluice({ baseURL: 'ftp://x' }), /baseURL: expected an http: or https: URL/);
  if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
    // Node 20: no global WebSocket, and the error says what to pass.
    assert.throws(() => new Sluice({ baseURL: 'http://x', transport: 'websocket' }), /pass one with new Sluice\(\{ baseURL, transport: "websocket", WebSocket \}\)/);
  }
});
