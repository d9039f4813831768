import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { SendPacer, type PacedSocket } from './send-pacer.js';

/** A socket whose buffer holds what was sent until `flush()` hands it to the "kernel". */
class FakeSocket extends EventEmitter implements PacedSocket {
  bufferedAmount = 0;
  paused = false;
  private pending: { bytes: number; cb: (err?: Error) => void }[] = [];
  send(data: string, cb: (err?: Error) => void): void {
    const bytes = Buffer.byteLength(data);
    this.bufferedAmount += bytes;
    this.pending.push({ bytes, cb });
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  flush(): void {
    for (const p of this.pending.splice(0)) {
      this.bufferedAmount -= p.bytes;
      p.cb();
    }
    this.emit('drain');
  }
}

test('followers wait while the buffer is over the bound and go on when it drains', async () => {
  const sock = new FakeSocket();
  const pacer = new SendPacer(sock, sock, 100, 1000);
  const ac = new AbortController();
  pacer.sendEvent('x'.repeat(150));
  assert.equal(pacer.full, true);
  let released = false;
  const waiting = pacer.room(ac.signal).then(() => (released = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(released, false, 'still waiting while the client reads nothing');
  sock.flush();
  await waiting;
  assert.equal(released, true);
  assert.equal(pacer.flushed, 1);
  pacer.close();
});

test('an abort or a closed socket releases a waiting follower', async () => {
  const sock = new FakeSocket();
  const pacer = new SendPacer(sock, sock, 10, 1000);
  pacer.sendEvent('x'.repeat(50));
  const ac = new AbortController();
  const waiting = pacer.room(ac.signal);
  ac.abort();
  await waiting;
  const again = pacer.room(new AbortController().signal);
  sock.emit('close');
  await again;
  pacer.sendEvent('ignored after close');
  assert.equal(sock.bufferedAmount, 50);
});

test('replies backed up past their bound stop reading client messages until they are flushed', () => {
  const sock = new FakeSocket();
  const pacer = new SendPacer(sock, sock, 1000, 30);
  pacer.sendReply('{"type":"pong"}');
  assert.equal(sock.paused, false);
  pacer.sendReply('{"type":"pong"}');
  pacer.sendReply('{"type":"pong"}');
  assert.equal(sock.paused, true);
  assert.equal(pacer.paused, true);
  sock.flush();
  assert.equal(sock.paused, false);
  assert.equal(pacer.flushed, 3);
  pacer.close();
});
