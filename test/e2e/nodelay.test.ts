/**
 * TCP_NODELAY on every streaming socket (SSE, NDJSON, WebSocket), read off the real server's
 * real sockets (helpers/sockopt.ts): with Nagle's algorithm on, a small event written while an
 * earlier one is unacknowledged waits for the peer's delayed ACK (up to 40 ms on Linux).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { startServer, type TestServer } from './helpers/server.js';
import { tcpNoDelayOf } from './helpers/sockopt.js';

let server: TestServer;
let port: number;
before(async () => {
  server = await startServer();
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server.stop();
});

const serverPID = (): number => {
  const pid = server.proc.pid;
  assert.ok(pid !== undefined, 'the server has a pid');
  return pid;
};

/** A streaming run that prints one line and then sleeps: resolves once that line is in, with the client's port. */
async function openStream(session: string, accept: string): Promise<{ res: IncomingMessage; clientPort: number; close(): Promise<void> }> {
  const body = JSON.stringify({ code: 'import time\nprint("ready", flush=True)\ntime.sleep(120)\n', language: 'python', mode: 'process', timeout: 300 });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: `/api/sessions/${session}/stream`, agent: false, headers: { 'content-type': 'application/json', accept } },
      resolve,
    );
    req.once('error', reject);
    req.end(body);
  });
  assert.equal(res.statusCode, 200);
  const clientPort = res.socket.localPort;
  assert.ok(clientPort !== undefined);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (b: Buffer): void => {
      seen += b.toString('utf8');
      if (!seen.includes('"content":"ready')) return;
      res.off('data', onData);
      res.pause();
      resolve();
    };
    res.on('data', onData);
    res.once('error', reject);
    res.once('end', () => reject(new Error(`the stream ended before the line came: ${seen}`)));
  });
  return {
    res,
    clientPort,
    async close() {
      res.destroy();
      const del = await fetch(`${server.url}/api/sessions/${session}`, { method: 'DELETE' });
      await del.arrayBuffer();
    },
  };
}

test('an SSE stream has TCP_NODELAY on the server side', async () => {
  const s = await openStream('nodelay-sse', 'text/event-stream');
  try {
    assert.equal(await tcpNoDelayOf(serverPID(), port, s.clientPort), true);
  } finally {
    await s.close();
  }
});

test('an NDJSON stream has TCP_NODELAY on the server side', async () => {
  const s = await openStream('nodelay-ndjson', 'application/x-ndjson');
  try {
    assert.equal(await tcpNoDelayOf(serverPID(), port, s.clientPort), true);
  } finally {
    await s.close();
  }
});

test('a WebSocket has TCP_NODELAY on the server side', async () => {
  const created = await fetch(`${server.url}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'nodelay-ws' }) });
  assert.equal(created.status, 201, await created.text());
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/sessions/nodelay-ws/ws`);
  ws.on('error', () => {});
  let clientPort: number | undefined;
  ws.once('upgrade', (res: IncomingMessage) => (clientPort = res.socket.localPort));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // A round trip through the server's message handler: the connection is fully set up.
  const pong = new Promise<void>((resolve, reject) => {
    ws.on('message', (d: WebSocket.RawData) => (String(d).includes('"pong"') ? resolve() : undefined));
    ws.once('close', (code) => reject(new Error(`the socket closed (${code}) before its pong`)));
  });
  ws.send(JSON.stringify({ type: 'ping' }));
  await pong;
  try {
    assert.ok(clientPort !== undefined);
    assert.equal(await tcpNoDelayOf(serverPID(), port, clientPort), true);
  } finally {
    if (ws.readyState !== ws.CLOSED) {
      const closed = new Promise((r) => ws.once('close', r));
      ws.close();
      await closed;
    }
  }
});
