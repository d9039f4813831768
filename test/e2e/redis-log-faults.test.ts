/**
 * The Redis event log against what a review found: half-open connections (a proxy that stops
 * forwarding without closing), a create whose reply is lost, a forgotten writer, fractional
 * TTLs, bytes-bounded reads, the state read skipped by live followers, a worker teeing its
 * local log (appendEntry), a follower whose writer died (ended by a reaper), and the LogStore
 * seam (onFailure, openOrWhy). A real redis-server; the tests run in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { ExecutionEvent, GapEvent } from '@sluice/protocol';
import { endIfOpen, RedisLogError, RedisLogReader, RedisLogWriter, type RedisLogOptions } from '../../packages/server/dist/internal/redis/redis-log.js';
import { RedisLogStore } from '../../packages/server/dist/internal/redis/redis-log-store.js';
import type { LogEntry } from '../../packages/server/dist/internal/execution/readable-log.js';
import { until } from './helpers/cluster-client.js';
import { blockedXReads, useRedis } from './helpers/redis-server.js';

const redis = useRedis({ aof: false, prefix: 'test:' });
let n = 0;

const logID = (): string => `exec:f${++n}-${process.pid}`;

function newWriter(id: string, opts: RedisLogOptions = {}, c = redis.conn): Promise<RedisLogWriter> {
  return RedisLogWriter.create<ExecutionEvent>(c, id, opts);
}

async function reader(id: string, opts: { blockMs?: number; unavailableMs?: number } = {}, c = redis.conn): Promise<RedisLogReader> {
  const r = await RedisLogReader.open<ExecutionEvent>(c, id, opts);
  assert.ok(r, `log ${id} should exist`);
  return r;
}

async function followAll(r: RedisLogReader, from = 1, batches?: LogEntry<string>[][]): Promise<LogEntry<string>[]> {
  const out: LogEntry<string>[] = [];
  for await (const batch of r.follow(from)) {
    batches?.push(batch);
    out.push(...batch);
  }
  return out;
}

const stdout = (seq: number, content: string): string => JSON.stringify({ type: 'stdout', seq, ts: 1_700_000_000_000 + seq, content });

test('a half-open connection (nothing answered, nothing closed): the writer and the follower give up within their bounds, and the connections work again once the network heals', { skip: redis.skip }, async () => {
  const proxy = await redis.proxy();
  const viaProxy = redis.connection(proxy.url);
  try {
    const id = logID();
    const w = await newWriter(id, { writeTimeoutMs: 1500 }, viaProxy);
    w.append({ type: 'stdout', content: 'a' });
    await w.flushed();
    const r = await reader(id, { blockMs: 300, unavailableMs: 1500 }, viaProxy);
    let outcome: unknown = undefined;
    void followAll(r).then(
      () => (outcome = 'ended'),
      (err: unknown) => (outcome = err),
    );
    await until('the follower to read seq 1', 20_000, () => r.lastSeq === 1);
    proxy.mode = 'blackhole';
    const t0 = Date.now();
    w.append({ type: 'stdout', content: 'b' });
    await assert.rejects(w.flushed(), (err: unknown) => err instanceof RedisLogError && err.reason === 'unavailable');
    const writerWaited = Date.now() - t0;
    assert.ok(writerWaited < 10_000, `the writer gave up after ${writerWaited} ms`);
    // The follower's wait counts from the call that went unanswered: about BLOCK + 1.5 s, not for ever.
    await until('the follower to give up', 15_000, () => outcome !== undefined);
    assert.ok(outcome instanceof RedisLogError && outcome.reason === 'unavailable', `follower: ${String(outcome)}`);
    const followerWaited = Date.now() - t0;
    assert.ok(followerWaited < 12_000, `the follower gave up after ${followerWaited} ms`);
    proxy.mode = 'pass';
    // The connections the calls hung on were replaced: a new writer and reader on them work.
    const id2 = logID();
    const w2 = await newWriter(id2, { writeTimeoutMs: 10_000 }, viaProxy);
    w2.append({ type: 'stdout', content: 'healed' });
    await w2.close();
    const entries = await followAll(await reader(id2, {}, viaProxy));
    assert.deepEqual(entries.map((e) => e.seq), [1]);
  } finally {
    await viaProxy.close();
    await proxy.close();
  }
});

test('create whose reply is lost is resent and succeeds (its own create, not `exists`)', { skip: redis.skip }, async () => {
  const proxy = await redis.proxy();
  const viaProxy = redis.connection(proxy.url);
  try {
    // The script is loaded and the connection ready: the eaten reply is the create's.
    await (await newWriter(logID(), {}, viaProxy)).close();
    const id = logID();
    proxy.eatNextReply();
    const w = await newWriter(id, {}, viaProxy);
    assert.equal(proxy.cuts, 1, 'the reply was eaten');
    w.append({ type: 'stdout', content: 'x' });
    await w.close();
    assert.deepEqual((await followAll(await reader(id))).map((e) => e.seq), [1]);
    // Someone else's log of that id is still refused.
    await assert.rejects(newWriter(id), (err: unknown) => err instanceof RedisLogError && err.reason === 'exists');
  } finally {
    await viaProxy.close();
    await proxy.close();
  }
});

test('a writer forgotten by its owner (neither closed nor abandoned) stops refreshing its keys: the log expires', { skip: redis.skip }, async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const id = logID();
  // In a function of its own, so that nothing of this test holds the writer.
  const forget = async (): Promise<void> => {
    const w = await newWriter(id, { liveTTLSec: 0.8 });
    w.append({ type: 'stdout', content: 'x' });
    await w.flushed();
  };
  await forget();
  const meta = `test:log:{${id}}:meta`;
  assert.ok(Number(await redis.command('PTTL', meta)) > 0);
  await until(
    'the forgotten log to expire',
    15_000,
    async () => {
      gc();
      return Number(await redis.command('PTTL', meta)) === -2;
    },
  );
});

test('TTLs in fractions of a second are stored as whole ms', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id, { liveTTLSec: 30.0005, retentionSec: 20.0007, writeTimeoutMs: 3000 });
  w.append({ type: 'stdout', content: 'x' });
  await w.flushed();
  const live = Number(await redis.command('PTTL', `test:log:{${id}}`));
  assert.ok(live > 29_000 && live <= 30_001, `live TTL ${live}`);
  await w.close();
  const kept = Number(await redis.command('PTTL', `test:log:{${id}}:meta`));
  assert.ok(kept > 19_000 && kept <= 20_001, `retention ${kept}`);
});

test('appendEntry stores another log\'s events with their seqs and JSON: in order, a skipped seq is a gap, a resend stores them once', { skip: redis.skip }, async () => {
  const proxy = await redis.proxy();
  const viaProxy = redis.connection(proxy.url);
  try {
    const id = logID();
    const w = await newWriter(id, {}, viaProxy);
    const r = await reader(id);
    const got = followAll(r);
    const sent: string[] = [];
    // Seqs 1…10, 13…20 (11 and 12 shed by the local log), then 21…120 with a lost reply in between.
    for (const seq of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20]) {
      const json = stdout(seq, `line ${seq}\n`);
      sent.push(json);
      assert.deepEqual(w.appendEntry(seq, json), { seq, type: 'stdout', json });
    }
    await w.flushed();
    proxy.eatNextReply();
    for (let seq = 21; seq <= 120; seq++) {
      const json = stdout(seq, `line ${seq}\n`);
      sent.push(json);
      w.appendEntry(seq, json);
    }
    await w.flushed();
    assert.equal(proxy.cuts, 1);
    assert.throws(() => w.appendEntry(120, stdout(120, 'again')), RangeError);
    assert.throws(() => w.appendEntry(5, stdout(5, 'back')), RangeError);
    const done = JSON.stringify({ type: 'done', seq: 121, ts: 1, exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
    w.appendEntry(121, done);
    await w.close();
    const entries = await got;
    const gap = entries.find((e) => e.type === 'gap');
    assert.ok(gap);
    const g = JSON.parse(gap.json) as GapEvent;
    assert.deepEqual([g.from_seq, g.to_seq], [11, 12]);
    assert.deepEqual(
      entries.filter((e) => e.type !== 'gap').map((e) => e.json),
      [...sent, done],
      'every event once, in order, its JSON as given',
    );
    assert.equal(w.evicted.events, 2, 'the skipped seqs count as dropped');
    let evicted = -1;
    for await (const _ of (await reader(id)).scan((e) => (evicted = e.events))) void _;
    assert.equal(evicted, 2);
  } finally {
    await viaProxy.close();
    await proxy.close();
  }
});

test('reads are bounded by bytes, not only by count: big events come a few at a time', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id, { maxBytes: 256 * 1024 * 1024 });
  const big = 'z'.repeat(200 * 1024);
  for (let i = 0; i < 40; i++) w.append({ type: 'stdout', content: big });
  await w.close();
  const batches: LogEntry<string>[][] = [];
  const entries = await followAll(await reader(id), 1, batches);
  assert.equal(entries.length, 40);
  const sizes = batches.map((b) => b.reduce((s, e) => s + e.json.length, 0));
  assert.ok(Math.max(...sizes) <= 4 * 1024 * 1024, `batch sizes ${sizes.join(', ')}`);
  assert.ok(sizes.slice(1).every((s) => s <= 1024 * 1024 + big.length + 100), `later batches follow the events' size: ${sizes.join(', ')}`);
});

test('a live follower blocks again at once: no state read (MULTI) per event', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  const r = await reader(id, { blockMs: 10_000 });
  await redis.command('CONFIG', 'RESETSTAT');
  const got = followAll(r);
  for (let i = 1; i <= 30; i++) {
    w.append({ type: 'stdout', content: `${i}\n` });
    await until(`the follower to have ${i}`, 20_000, () => r.lastSeq >= i);
    await until('the follower to block again', 20_000, async () => (await blockedXReads(redis.command)) === 1);
  }
  const stats = String(await redis.command('INFO', 'commandstats'));
  const calls = (cmd: string): number => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  assert.ok(calls('xread') >= 30, `xread calls ${calls('xread')}`);
  assert.ok(calls('multi') <= 3, `state reads while following 30 events: ${calls('multi')}`);
  await w.close();
  assert.equal((await got).length, 30);
});

test('a follower whose writer died is ended by the reaper\'s endIfOpen at once, blocked or not', { skip: redis.skip }, async () => {
  const id = logID();
  const w = await newWriter(id);
  w.append({ type: 'stdout', content: 'before\n' });
  await w.flushed();
  const r = await reader(id, { blockMs: 60_000 });
  let ended = false;
  const got = followAll(r).then((e) => ((ended = true), e));
  await until('the follower to block in XREAD', 20_000, async () => (await blockedXReads(redis.command)) === 1);
  // The worker's process dies: nothing closes the log; a reaper that saw its lease lapse ends it.
  w.abandon();
  assert.equal(await endIfOpen<ExecutionEvent>(redis.conn, id, { type: 'done', exit_code: null, duration: '1.000s', duration_ms: 1000, reason: 'sandbox_lost' }), true);
  await until('the follower to end', 10_000, () => ended);
  const entries = await got;
  assert.deepEqual(entries.map((e) => e.type), ['stdout', 'done']);
  assert.match(entries[1]?.json ?? '', /"reason":"sandbox_lost"/);
  // The worker, had it lived, learns it lost the log.
  w.append({ type: 'stdout', content: 'late\n' });
  await assert.rejects(w.flushed(), (err: unknown) => err instanceof RedisLogError && err.reason === 'ended');
});

test('the store seam: onFailure from create, and openOrWhy tells an unknown log from a lost one', { skip: redis.skip }, async () => {
  const store = new RedisLogStore(redis.conn, {}, { blockMs: 500 });
  const id = logID();
  const seen: { told: Error | null } = { told: null };
  const w = await store.create(id, { maxBytes: 1024 * 1024, onFailure: (err) => (seen.told = err) });
  w.append({ type: 'stdout', content: 'x' });
  const opened = await store.openOrWhy(id);
  assert.equal(opened.kind, 'open');
  // Redis loses the log (a flush, a restart without persistence) while the cluster's record of the execution stays.
  await redis.command('HSET', `test:${id}`, 'owner', '-', 'session', 's', 'worker', 'w');
  await redis.command('DEL', `test:log:{${id}}`, `test:log:{${id}}:meta`);
  w.append({ type: 'stdout', content: 'y' });
  await until('the writer to be told', 20_000, () => seen.told !== null);
  assert.ok(seen.told instanceof RedisLogError);
  assert.equal(seen.told.reason, 'lost');
  assert.deepEqual(await store.openOrWhy(id), { kind: 'missing', why: 'lost' });
  assert.deepEqual(await store.openOrWhy(logID()), { kind: 'missing', why: 'unknown' });
  assert.equal(await store.open(id), null);
  await redis.command('DEL', `test:${id}`);
});
