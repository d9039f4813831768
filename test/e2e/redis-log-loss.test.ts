/**
 * What a Redis without persistence does to event logs: restarted, it comes back empty, and
 * both ends must say so (a `gap` and a `lost` error for the follower, a `lost` failure for the
 * writer) rather than wait in silence; stopped for longer than the bounded waits, it makes the
 * writer and the followers fail with `unavailable`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecutionEvent, GapEvent } from '@sluice/protocol';
import { RedisLogError, RedisLogReader, RedisLogWriter } from '../../packages/server/dist/internal/redis/redis-log.js';
import type { LogEntry } from '../../packages/server/dist/internal/execution/readable-log.js';
import { until } from './helpers/cluster-client.js';
import { useRedis } from './helpers/redis-server.js';

const redis = useRedis({ aof: false, prefix: 'test:' });
let n = 0;

const logID = (): string => `exec:l${++n}-${process.pid}`;

/** Follows `r` from 1, recording entries, until it ends or throws; resolves with both. */
async function follow(r: RedisLogReader, entries: LogEntry<string>[]): Promise<unknown> {
  try {
    for await (const batch of r.follow(1)) entries.push(...batch);
    return null;
  } catch (err) {
    return err;
  }
}

test('Redis restarted without persistence mid-stream: the follower gets a gap and a lost error, the writer fails as lost; never silence', { skip: redis.skip }, async () => {
  const id = logID();
  let told: RedisLogError | null = null;
  const w = await RedisLogWriter.create<ExecutionEvent>(redis.conn, id, { onFailure: (err) => (told = err) });
  const r = await RedisLogReader.open<ExecutionEvent>(redis.conn, id, { blockMs: 300 });
  assert.ok(r);
  const entries: LogEntry<string>[] = [];
  let outcome: unknown = undefined;
  void follow(r, entries).then((o) => (outcome = o));
  for (let i = 0; i < 100; i++) w.append({ type: 'stdout', content: `${i}\n` });
  await w.flushed();
  await until('the follower to have read 100 events', 30_000, () => entries.length === 100);
  await redis.server.kill();
  await redis.server.start();
  // The follower notices within a BLOCK timeout or so: poll with a deadline, never a fixed wait.
  await until('the follower to end', 30_000, () => outcome !== undefined);
  assert.ok(outcome instanceof RedisLogError, `the follower ends with an error, got ${String(outcome)}`);
  assert.equal(outcome.reason, 'lost');
  assert.equal(entries.length, 100, 'it read everything it could; nothing made up');
  // Appends the writer had not stored yet are lost with it: the follower that knew of them says so.
  w.append({ type: 'stdout', content: 'after the restart\n' });
  await assert.rejects(w.flushed(), (err: unknown) => err instanceof RedisLogError && err.reason === 'lost');
  assert.equal((told as RedisLogError | null)?.reason, 'lost');
  assert.throws(() => w.append({ type: 'stdout', content: 'more' }), RedisLogError);
  assert.equal(await RedisLogReader.open(redis.conn, id), null, 'the log is unknown now');
  // The lost writer did not re-create the log's keys.
  assert.deepEqual(await redis.command('KEYS', `test:log:{${id}}*`), []);
});

test('a follower that knew of events it had not read yet gets a gap for them before the lost error', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await RedisLogWriter.create<ExecutionEvent>(redis.conn, id);
  for (let i = 0; i < 10; i++) w.append({ type: 'stdout', content: `${i}\n` });
  await w.flushed();
  const r = await RedisLogReader.open<ExecutionEvent>(redis.conn, id, { blockMs: 300 });
  assert.ok(r);
  assert.equal(r.lastSeq, 10);
  await redis.server.kill();
  await redis.server.start();
  const entries: LogEntry<string>[] = [];
  const outcome = await follow(r, entries);
  assert.ok(outcome instanceof RedisLogError && outcome.reason === 'lost');
  assert.equal(entries.length, 1);
  const gap = JSON.parse(entries[0]?.json ?? '{}') as GapEvent;
  assert.deepEqual([gap.type, gap.from_seq, gap.to_seq], ['gap', 1, 10]);
  w.abandon();
});

test('Redis down for longer than the bounded waits: the writer fails as unavailable (close rejects), so does a follower', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await RedisLogWriter.create<ExecutionEvent>(redis.conn, id, { writeTimeoutMs: 1500 });
  const r = await RedisLogReader.open<ExecutionEvent>(redis.conn, id, { blockMs: 300, unavailableMs: 1500 });
  assert.ok(r);
  const entries: LogEntry<string>[] = [];
  let outcome: unknown = undefined;
  void follow(r, entries).then((o) => (outcome = o));
  w.append({ type: 'stdout', content: 'a\n' });
  await w.flushed();
  await redis.server.stop();
  try {
    const t0 = Date.now();
    w.append({ type: 'stdout', content: 'b\n' });
    await assert.rejects(w.close(), (err: unknown) => err instanceof RedisLogError && err.reason === 'unavailable');
    const waited = Date.now() - t0;
    assert.ok(waited >= 1400 && waited < 10_000, `the writer gave up after its bound (${waited} ms)`);
    assert.equal(w.failure?.reason, 'unavailable');
    await until('the follower to give up', 30_000, () => outcome !== undefined);
    assert.ok(outcome instanceof RedisLogError && outcome.reason === 'unavailable', `follower: ${String(outcome)}`);
  } finally {
    await redis.server.start();
  }
});
