/**
 * A WebSocket belongs to the session it opened on, not to its id: once that session is deleted
 * and another created under the same id, the socket closes with 4404 (NO_SESSION) and runs
 * nothing in the newcomer (Backend.incarnation).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

test('a socket whose session was deleted and created again under the same id closes with 4404 and runs nothing', async () => {
  const create = await postJSON(`${server.url}/api/sessions`, { id: 'reborn' });
  assert.equal(create.status, 201, await create.text());
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/sessions/reborn/ws`);
  const received: Record<string, unknown>[] = [];
  ws.on('message', (data: WebSocket.RawData) => received.push(JSON.parse(data.toString()) as Record<string, unknown>));
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });

  const del = await fetch(`${server.url}/api/sessions/reborn`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  const again = await postJSON(`${server.url}/api/sessions`, { id: 'reborn' });
  assert.equal(again.status, 201, await again.text());

  // Whether the periodic check saw it first or this message does, the socket is done with.
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'execute', request_id: 'r1', code: 'print(1)' }));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still open after 10 s'), 10_000)));
  const outcome = await Promise.race([closed, deadline]);
  clearTimeout(timer);
  ws.terminate();
  assert.equal(outcome, 4404);
  assert.equal(received.find((m) => m['type'] === 'accepted'), undefined, `nothing was accepted: ${JSON.stringify(received)}`);
  const view = (await (await fetch(`${server.url}/api/sessions/reborn`)).json()) as { executions: number };
  assert.equal(view.executions, 0, 'the new session ran nothing');
});
