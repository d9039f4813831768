import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EvictedEvents, ExecutionEvent } from '@sluice/protocol';
import type { LogEntry, ReadableLog } from '../execution/readable-log.js';
import { streamLog } from '../http/write-events.js';
import { RedisLogError } from '../redis/redis-log.js';
import { EndsWhenLost } from './lost-log.js';

/** A log that yields `entries`, then fails with `err`. */
function failingLog(entries: LogEntry<ExecutionEvent['type']>[], err: Error): ReadableLog<ExecutionEvent> {
  return {
    closed: false,
    lastSeq: entries.length,
    async *follow() {
      yield entries;
      throw err;
    },
    async *scan(_onEvicted: (e: EvictedEvents) => void) {
      yield [];
    },
  };
}

const start: LogEntry<'start'> = {
  seq: 1,
  type: 'start',
  json: JSON.stringify({ type: 'start', seq: 1, ts: Date.now() - 1500, execution_id: 'e', session_id: 's', language: 'python', mode: 'process' }),
};
const out: LogEntry<'stdout'> = { seq: 2, type: 'stdout', json: JSON.stringify({ type: 'stdout', seq: 2, ts: Date.now(), content: 'hi\n' }) };

test('a log Redis lost ends with error and done sandbox_lost, seqs after the last one read', async () => {
  const log = new EndsWhenLost(failingLog([start, out], new RedisLogError('lost', 'the log is gone')));
  const got: LogEntry<ExecutionEvent['type']>[] = [];
  for await (const batch of log.follow(1)) got.push(...batch);
  assert.deepEqual(
    got.map((e) => [e.seq, e.type]),
    [
      [1, 'start'],
      [2, 'stdout'],
      [3, 'error'],
      [4, 'done'],
    ],
  );
  const done = JSON.parse(got[3]?.json ?? '{}') as { reason: string; exit_code: unknown; duration_ms: number };
  assert.equal(done.reason, 'sandbox_lost');
  assert.equal(done.exit_code, null);
  assert.ok(done.duration_ms >= 1500, `duration counts from start: ${done.duration_ms}`);
  assert.equal((JSON.parse(got[2]?.json ?? '{}') as { code: string }).code, 'SANDBOX_UNAVAILABLE');
});

test('other failures are thrown as before (Redis unreachable: the stream ends without done)', async () => {
  const log = new EndsWhenLost(failingLog([start], new RedisLogError('unavailable', 'no answer')));
  await assert.rejects(async () => {
    for await (const _ of log.follow(1)) {
      // drain
    }
  }, /no answer/);
});

test('streamLog ends the response when the log cannot be read further, never leaving it open', async () => {
  const server = createServer((_req, res) => {
    streamLog(res, failingLog([start], new RedisLogError('unavailable', 'no answer')), {
      sse: true,
      headers: {},
      contentType: 'text/event-stream',
      from: 1,
      heartbeatSec: 0,
      encode: (batch) => batch.map((e) => `id: ${e.seq}\ndata: ${e.json}\n\n`).join(''),
    }).catch(() => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const { body, ended } = await new Promise<{ body: string; ended: boolean }>((resolve) => {
      let text = '';
      // A response left open would hang the client: it gives up after a deadline, and the test fails.
      const req = request({ host: '127.0.0.1', port, path: '/', signal: AbortSignal.timeout(8000) }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ body: text, ended: true }));
        res.on('error', () => resolve({ body: text, ended: false }));
      });
      req.on('error', () => resolve({ body: text, ended: false }));
      req.end();
    });
    assert.ok(ended, 'the response ended');
    assert.match(body, /"type":"start"/);
    assert.doesNotMatch(body, /"type":"done"/);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
