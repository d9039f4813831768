/**
 * Frames of one turn go to the TCP socket in one write (corked until the tick queue runs): an
 * `execute` answers `accepted` and its `start` event together, and a kernel cell's `result` and
 * its `done`, appended in the same drain, go together too. A warm cell's round trip pays two
 * client wake-ups less. A real WSConnection and a real EventLog; the socket is a recorder of
 * what is sent while corked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import type { RunRequest } from '@sluice/protocol';
import type { Backend, ExecutionHandle } from '../backend/backend.js';
import type { ServerContext } from '../http/context.js';
import { EventLog } from '../execution/event-log.js';
import { WSConnection } from './ws-connection.js';

/** The TCP socket under the WebSocket: counts corks, as Node's Writable does. */
class RawSocket extends EventEmitter {
  corked = 0;
  readonly writes: string[][] = [];
  /** Sees each frame as it is sent. */
  onFrame: (frame: string) => void = () => {};
  private pending: string[] = [];
  cork(): void {
    this.corked++;
  }
  uncork(): void {
    if (this.corked === 0) return;
    if (--this.corked === 0) this.flush();
  }
  setNoDelay(): void {}
  write(frame: string): void {
    this.pending.push(frame);
    this.onFrame(frame);
    if (this.corked === 0) this.flush();
  }
  private flush(): void {
    if (this.pending.length > 0) this.writes.push(this.pending);
    this.pending = [];
  }
}

/** The `ws` WebSocket as WSConnection uses it, writing each frame to the raw socket. */
class FakeWebSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CONNECTING = 0;
  readyState = 1;
  bufferedAmount = 0;
  isPaused = false;
  constructor(private readonly raw: RawSocket) {
    super();
  }
  send(data: string, cb?: (err?: Error) => void): void {
    this.raw.write(data);
    cb?.();
  }
  pause(): void {}
  resume(): void {}
  ping(): void {}
  close(): void {}
  terminate(): void {}
}

test('execute: accepted and the start event go to the socket in one write, and so do a result and the done behind it', async () => {
  const log = new EventLog();
  log.append({ type: 'start', execution_id: 'e1', session_id: 's1', language: 'python', mode: 'kernel' });
  const exec: Pick<ExecutionHandle, 'id' | 'sessionID' | 'log'> = { id: 'e1', sessionID: 's1', log };
  const backend: Pick<Backend, 'incarnation' | 'submitRun' | 'attach'> = {
    incarnation: async () => '1',
    submitRun: async (_owner: string | null, _session: string, _body: RunRequest) => exec as ExecutionHandle,
    attach: () => () => {},
  };
  const ctx = { backend, health: () => null, config: { heartbeatSec: 0, killGraceMs: 100 } } as unknown as ServerContext;
  const raw = new RawSocket();
  const ws = new FakeWebSocket(raw);
  const logger = { debug() {}, error() {} } as unknown as FastifyBaseLogger;
  const conn = new WSConnection(ws as unknown as WebSocket, raw, { ctx, owner: null, session: { id: 's1', incarnation: '1' }, log: logger });
  ws.emit('message', Buffer.from(JSON.stringify({ type: 'execute', request_id: 'r1', code: '1 + 1' })), false);
  const deadline = Date.now() + 10_000;
  while (raw.writes.flat().length < 2) {
    assert.ok(Date.now() < deadline, `only ${JSON.stringify(raw.writes)} was written`);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(raw.writes.length, 1, `accepted and start in separate writes: ${JSON.stringify(raw.writes)}`);
  const [first] = raw.writes;
  assert.deepEqual(
    first?.map((f) => (JSON.parse(f) as { type: string }).type),
    ['accepted', 'start'],
  );
  // The done comes a few microtasks after the result (as a cell's end does), once its frame is out.
  raw.onFrame = (frame) => {
    if (!frame.includes('"type":"result"')) return;
    void Promise.resolve().then(() => {
      log.append({ type: 'done', exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited' });
      log.close();
    });
  };
  log.append({ type: 'result', data: { 'text/plain': '2' } });
  while (raw.writes.flat().length < 4) {
    assert.ok(Date.now() < deadline, `only ${JSON.stringify(raw.writes)} was written`);
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(
    raw.writes.map((w) => w.map((f) => (JSON.parse(f) as { type: string }).type)),
    [
      ['accepted', 'start'],
      ['result', 'done'],
    ],
  );
  ws.readyState = 3;
  ws.emit('close');
  await conn.closed;
});
