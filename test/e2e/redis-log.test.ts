/**
 * Event logs in Redis Streams against a real redis-server with AOF (fsync always): order and
 * exactly-once, replay from the middle, the bounds and `gap`, the end, TTLs, abort, a paused
 * Redis, dropped connections and a crash with restart. The one Redis of this file is restarted
 * by some tests, so they run in order (node:test's default within a file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecutionEvent, GapEvent } from '@sluice/protocol';
import { RedisLogReader, RedisLogWriter, type RedisLogOptions } from '../../packages/server/dist/internal/redis/redis-log.js';
import { RedisLogStore } from '../../packages/server/dist/internal/redis/redis-log-store.js';
import type { LogEntry } from '../../packages/server/dist/internal/execution/readable-log.js';
import { until } from './helpers/cluster-client.js';
import { blockedXReads, useRedis } from './helpers/redis-server.js';

const redis = useRedis({ aof: true, prefix: 'test:' });
let n = 0;

/** A fresh log id per test. */
const logID = (): string => `exec:t${++n}-${process.pid}`;

function newWriter(id: string, opts: RedisLogOptions = {}): Promise<RedisLogWriter> {
  return RedisLogWriter.create<ExecutionEvent>(redis.conn, id, opts);
}

async function reader(id: string, blockMs = 2000): Promise<RedisLogReader> {
  const r = await RedisLogReader.open<ExecutionEvent>(redis.conn, id, { blockMs });
  assert.ok(r, `log ${id} should exist`);
  return r;
}

/** Everything a follower from `from` gets until the log ends. */
async function followAll(r: RedisLogReader, from = 1, signal?: AbortSignal): Promise<LogEntry<string>[]> {
  const out: LogEntry<string>[] = [];
  for await (const batch of r.follow(from, signal)) out.push(...batch);
  return out;
}

/** Asserts `entries` are the events `from`…`to`, each once, in order, none a gap. */
function assertContiguous(entries: LogEntry<string>[], from: number, to: number): void {
  const seqs = entries.map((e) => e.seq);
  const gaps = entries.filter((e) => e.type === 'gap');
  assert.deepEqual(gaps, [], 'no gaps');
  assert.equal(seqs.length, to - from + 1, `expected ${to - from + 1} events, got ${seqs.length}`);
  seqs.forEach((s, i) => assert.equal(s, from + i, `event ${i} has seq ${s}, expected ${from + i}`));
}

test('a follower gets every event once, in order, live, and ends when the log closes', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  const r = await reader(id);
  const got = followAll(r);
  for (let i = 0; i < 50; i++) {
    // Bursts and pauses: some appends batch, some go alone.
    for (let j = 0; j < 100; j++) w.append({ type: 'stdout', content: `line ${i}.${j}\n` });
    await new Promise((res) => setImmediate(res));
  }
  w.append({ type: 'done', exit_code: 0, duration: '0.1s', duration_ms: 100, reason: 'exited' });
  await w.close();
  const entries = await got;
  assertContiguous(entries, 1, 5001);
  assert.equal(entries[0]?.json, JSON.stringify(JSON.parse(entries[0]?.json ?? '')), 'the JSON is stored as written');
  assert.match(entries[0]?.json ?? '', /^\{"type":"stdout","seq":1,"ts":\d+,"content":"line 0\.0\\n"\}$/);
  assert.equal(entries.at(-1)?.type, 'done');
  assert.equal(r.closed, true);
  assert.equal(r.lastSeq, 5001);
  // The stream's ids are the seqs.
  const first = (await redis.command('XRANGE', `test:log:{${id}}`, '-', '+', 'COUNT', 1)) as [string, string[]][];
  assert.equal(first[0]?.[0], '1-0');
});

test('a follower from the middle gets that seq on; one past the end of a closed log gets nothing', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  for (let i = 1; i <= 3000; i++) w.append({ type: 'stdout', content: `${i}\n` });
  await w.flushed();
  const r = await reader(id);
  const live = followAll(r, 1234);
  for (let i = 3001; i <= 3100; i++) w.append({ type: 'stderr', content: `${i}\n` });
  await w.close();
  assertContiguous(await live, 1234, 3100);
  assert.deepEqual(await followAll(await reader(id), 3101), []);
  // scan: everything held, nothing evicted.
  let evicted = -1;
  let held = 0;
  for await (const jsons of (await reader(id)).scan((e) => (evicted = e.events))) held += jsons.length;
  assert.equal(evicted, 0);
  assert.equal(held, 3100);
});

test('past maxEntries the oldest events are trimmed: a reader from 1 gets a gap for exactly those, and scan counts them', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id, { maxEntries: 100 });
  for (let i = 1; i <= 1000; i++) w.append({ type: 'stdout', content: `${i}\n` });
  await w.close();
  assert.equal(await redis.command('XLEN', `test:log:{${id}}`), 101, '100 events and the end marker');
  const entries = await followAll(await reader(id), 1);
  const gap = JSON.parse(entries[0]?.json ?? '{}') as GapEvent;
  assert.equal(gap.type, 'gap');
  assert.deepEqual([gap.from_seq, gap.to_seq, gap.seq], [1, 900, 900]);
  assertContiguous(entries.slice(1), 901, 1000);
  // From inside the trimmed run: the gap starts there.
  const mid = await followAll(await reader(id), 500);
  assert.deepEqual([(JSON.parse(mid[0]?.json ?? '{}') as GapEvent).from_seq, (JSON.parse(mid[0]?.json ?? '{}') as GapEvent).to_seq], [500, 900]);
  let evicted = null as null | { events: number; from_seq: number | null; to_seq: number | null; stdout_bytes: number };
  for await (const _ of (await reader(id)).scan((e) => (evicted = e))) void _;
  assert.deepEqual(evicted && [evicted.events, evicted.from_seq, evicted.to_seq], [900, 1, 900]);
  assert.ok(evicted && evicted.stdout_bytes > 0, 'the dropped output is counted');
});

test('maxBytes bounds the stream by JSON bytes, trimming the oldest but never the newest', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id, { maxBytes: 64 * 1024 });
  const line = 'x'.repeat(1000);
  for (let i = 0; i < 500; i++) w.append({ type: 'stdout', content: line });
  w.append({ type: 'stdout', content: 'y'.repeat(200_000) });
  await w.close();
  const entries = await followAll(await reader(id), 1);
  assert.equal(entries[0]?.type, 'gap');
  assert.equal(entries.length, 2, 'a gap, then only the newest (larger than the bound)');
  assert.equal(entries[1]?.seq, 501);
});

test('the end wakes a blocked follower at once, not at its BLOCK timeout', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  w.append({ type: 'stdout', content: 'a' });
  await w.flushed();
  const r = await reader(id, 60_000);
  let ended = false;
  const got = followAll(r).then((e) => ((ended = true), e));
  await until('the follower to have read seq 1', 20_000, () => r.lastSeq === 1);
  // Redis says the follower sits in XREAD BLOCK (60 s): only the end marker can wake it in time.
  await until('the follower to block in XREAD', 20_000, async () => (await blockedXReads(redis.command)) === 1);
  await w.close();
  await until('the follower to end', 10_000, () => ended);
  assertContiguous(await got, 1, 1);
});

test('an aborted follower ends promptly and gives back its blocking connection', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  const r = await reader(id, 60_000);
  const ac = new AbortController();
  let ended = false;
  const got = followAll(r, 1, ac.signal).then(() => (ended = true));
  // Blocked in Redis, not merely holding a pooled connection (idle ones from earlier tests count in size).
  await until('the follower to block in XREAD', 20_000, async () => (await blockedXReads(redis.command)) === 1);
  const before = redis.conn.blocking.size;
  const t0 = Date.now();
  ac.abort();
  await until('the follower to end', 5_000, () => ended);
  await got;
  assert.ok(Date.now() - t0 < 5_000);
  assert.equal(redis.conn.blocking.size, before - 1, 'the aborted XREAD connection is closed, not left blocked');
  await until('Redis to see the blocked XREAD gone', 5_000, async () => (await blockedXReads(redis.command)) === 0);
  await w.close();
});

test('every key has a TTL: the live one while written, the retention once closed', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id, { liveTTLSec: 600, retentionSec: 60 });
  const keys = [`test:log:{${id}}`, `test:log:{${id}}:meta`];
  const meta = Number(await redis.command('PTTL', keys[1] ?? ''));
  assert.ok(meta > 590_000 && meta <= 600_000, `meta's TTL after create: ${meta}`);
  w.append({ type: 'stdout', content: 'a' });
  await w.flushed();
  for (const k of keys) {
    const ttl = Number(await redis.command('PTTL', k));
    assert.ok(ttl > 590_000 && ttl <= 600_000, `${k} live TTL: ${ttl}`);
  }
  await w.close();
  for (const k of keys) {
    const ttl = Number(await redis.command('PTTL', k));
    assert.ok(ttl > 50_000 && ttl <= 60_000, `${k} TTL once closed: ${ttl}`);
  }
  // Nothing under the prefix lives for ever.
  const all = (await redis.command('KEYS', 'test:*')) as string[];
  for (const k of all) assert.notEqual(Number(await redis.command('PTTL', k)), -1, `${k} has no TTL`);
});

test("discard deletes a never-used log's keys at once, but not a log another writer now owns", { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  const keys = [`test:log:{${id}}`, `test:log:{${id}}:meta`];
  await w.discard();
  for (const k of keys) assert.equal(Number(await redis.command('EXISTS', k)), 0, `${k} is gone`);
  const other = logID();
  const w2 = await newWriter(other);
  // Another writer's epoch (the log was made anew): this writer's discard leaves it alone.
  await redis.command('HSET', `test:log:{${other}}:meta`, 'epoch', 'someone-else');
  await w2.discard();
  assert.equal(Number(await redis.command('EXISTS', `test:log:{${other}}:meta`)), 1, "another writer's log stays");
});

test('CLIENT PAUSE WRITE: appends wait without blocking the event loop, then arrive in order', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  const r = await reader(id);
  const got = followAll(r);
  w.append({ type: 'stdout', content: 'before\n' });
  await w.flushed();
  await redis.command('CLIENT', 'PAUSE', 1000, 'WRITE');
  const paused = Date.now();
  // A timer that keeps ticking shows the event loop is free while Redis holds the writes.
  let ticks = 0;
  let longest = 0;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, 10);
  try {
    for (let i = 0; i < 2000; i++) {
      w.append({ type: 'stdout', content: `during ${i}\n` });
      if (i % 100 === 0) await new Promise((res) => setImmediate(res));
    }
    await w.flushed();
  } finally {
    clearInterval(timer);
  }
  assert.ok(Date.now() - paused >= 900, 'the writes waited for the pause');
  assert.ok(ticks >= 20, `the event loop ran timers during the pause (${ticks} ticks)`);
  assert.ok(longest < 500, `no long stall of the event loop (longest ${longest} ms)`);
  await w.close();
  assertContiguous(await got, 1, 2001);
});

test('Redis slower than the program: waiting events past maxPendingBytes are dropped by the overflow policy, the newest kept', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id, { maxPendingBytes: 32 * 1024 });
  w.append({ type: 'start', execution_id: 'e', session_id: 's', language: 'python', mode: 'process' });
  await w.flushed();
  await redis.command('CLIENT', 'PAUSE', 500, 'WRITE');
  for (let i = 0; i < 2000; i++) {
    w.append({ type: 'progress', percent: i / 20 });
    w.append({ type: 'stdout', content: `out ${i}\n` });
  }
  w.append({ type: 'done', exit_code: 0, duration: '1s', duration_ms: 1000, reason: 'exited' });
  await w.close();
  const entries = await followAll(await reader(id));
  const events = entries.filter((e) => e.type !== 'gap');
  assert.ok(entries.some((e) => e.type === 'gap'), 'readers are told what is missing');
  assert.equal(entries.at(-1)?.type, 'done');
  // Progress went first: only what came after the last overflow (a quarter of the bound) is left, and the newest.
  const progress = events.filter((e) => e.type === 'progress');
  assert.ok(progress.length < 200, `${progress.length} progress events kept`);
  assert.equal(progress.at(-1)?.seq, w.lastSeq - 2, 'the newest progress stays');
  assert.ok((w.evicted.types.progress ?? 0) > 1800, `progress dropped: ${w.evicted.types.progress}`);
  // Gaps and events cover every seq exactly once.
  let next = 1;
  for (const e of entries) {
    const from = e.type === 'gap' ? (JSON.parse(e.json) as GapEvent).from_seq : e.seq;
    assert.equal(from, next);
    next = e.seq + 1;
  }
  assert.equal(next, w.lastSeq + 1);
});

test('connections dropped mid-stream (CLIENT KILL): the writer resends, the follower resumes from its last id, nothing lost or doubled', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  const r = await reader(id);
  const got = followAll(r);
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 500; i++) w.append({ type: 'stdout', content: `${round}.${i}\n` });
    await redis.command('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await new Promise((res) => setTimeout(res, 30));
  }
  await w.close();
  assertContiguous(await got, 1, 2500);
});

test('a write whose reply is lost (the script ran, the connection dropped) is resent and stored once', { skip: redis.skip }, async () => {
  const proxy = await redis.proxy();
  const viaProxy = redis.connection(proxy.url);
  try {
    const id = logID();
    const w = await RedisLogWriter.create<ExecutionEvent>(viaProxy, id);
    w.append({ type: 'stdout', content: 'first\n' });
    await w.flushed();
    for (let round = 0; round < 3; round++) {
      proxy.eatNextReply();
      for (let i = 0; i < 100; i++) w.append({ type: 'stdout', content: `${round}.${i}\n` });
      await w.flushed();
    }
    await w.close();
    assert.equal(proxy.cuts, 3);
    assert.equal(w.failure, null);
    assertContiguous(await followAll(await reader(id)), 1, 301);
  } finally {
    await viaProxy.close();
    await proxy.close();
  }
});

test('Redis killed and restarted with AOF mid-stream: the follower continues, nothing lost, nothing doubled', { skip: redis.skip }, async () => {
  const id = logID();
  // Appends go on while Redis is down: the pending bound must hold them all (nothing dropped to a gap).
  const w = await newWriter(id, { writeTimeoutMs: 20_000, maxPendingBytes: 512 * 1024 * 1024 });
  const r = await reader(id);
  const got = followAll(r);
  let stop = false;
  const writing = (async () => {
    for (let i = 0; !stop; i++) {
      w.append({ type: 'stdout', content: `${i}\n` });
      if (i % 50 === 0) await new Promise((res) => setTimeout(res, 1));
    }
  })();
  await until('some events stored', 20_000, () => w.storedSeq > 500);
  await redis.server.kill();
  await new Promise((res) => setTimeout(res, 300));
  await redis.server.start();
  const afterRestart = w.lastSeq;
  await until('events stored after the restart', 20_000, () => w.storedSeq > afterRestart + 500);
  stop = true;
  await writing;
  await w.close();
  assert.equal(w.failure, null);
  assert.equal(w.evicted.events, 0, 'nothing dropped while Redis was down');
  assertContiguous(await got, 1, w.lastSeq);
});

test('the Redis store: create, then open from another connection (another node) and follow', { skip: redis.skip }, async () => {
  const other = redis.connection();
  try {
    const store = new RedisLogStore(redis.conn, { retentionSec: 60 });
    const elsewhere = new RedisLogStore(other);
    const id = logID();
    const w = await store.create(id, { maxBytes: 1024 * 1024 });
    await assert.rejects(store.create(id, { maxBytes: 1024 }), /exists/);
    assert.equal(await elsewhere.open(logID()), null, 'an unknown log');
    const r = await elsewhere.open(id);
    assert.ok(r);
    const got = followAll(r as RedisLogReader);
    w.append({ type: 'stdout', content: 'x' });
    await w.close();
    assertContiguous(await got, 1, 1);
  } finally {
    await other.close();
  }
});
