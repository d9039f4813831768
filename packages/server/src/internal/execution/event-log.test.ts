import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog, type LogEntry } from './event-log.js';

async function drain(it: AsyncIterable<LogEntry[]>): Promise<LogEntry[]> {
  const all: LogEntry[] = [];
  for await (const batch of it) all.push(...batch);
  return all;
}

test('events get seq 1..n and ts, and the JSON leads with type and seq', () => {
  const log = new EventLog();
  log.append({ type: 'stdout', content: 'a' });
  const e = log.append({ type: 'stderr', content: 'b' });
  assert.equal(e.seq, 2);
  const parsed = JSON.parse(e.json) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed).slice(0, 3), ['type', 'seq', 'ts']);
  assert.equal(parsed['content'], 'b');
  assert.equal(log.lastSeq, 2);
});

test('replay from any seq returns that event and everything after, with no gap or duplicate', async () => {
  const log = new EventLog();
  for (let i = 0; i < 50; i++) log.append({ type: 'stdout', content: String(i) });
  log.close();
  for (const from of [1, 2, 25, 50, 51]) {
    const seqs = (await drain(log.follow(from))).map((e) => e.seq);
    assert.deepEqual(seqs, Array.from({ length: 51 - from }, (_, i) => from + i));
  }
});

test('a follower receives live events and returns when the log closes', async () => {
  const log = new EventLog();
  const got = drain(log.follow(1));
  log.append({ type: 'stdout', content: 'x' });
  await new Promise((r) => setTimeout(r, 5));
  log.append({ type: 'stdout', content: 'y' });
  log.close();
  assert.deepEqual((await got).map((e) => e.seq), [1, 2]);
});

test('aborting the signal ends a waiting follower', async () => {
  const log = new EventLog();
  const ac = new AbortController();
  const got = drain(log.follow(1, ac.signal));
  setTimeout(() => ac.abort(), 5);
  assert.deepEqual(await got, []);
});

test('past its byte bound the log drops the oldest events and a reader gets a gap', async () => {
  const log = new EventLog(2000);
  for (let i = 0; i < 100; i++) log.append({ type: 'stdout', content: 'x'.repeat(50) });
  log.close();
  assert.ok(log.bytes <= 2000);
  assert.ok(log.firstSeq > 1);
  const all = await drain(log.follow(1));
  const first = all[0];
  assert.equal(first?.type, 'gap');
  const gap = JSON.parse(first?.json ?? '{}') as { from_seq: number; to_seq: number };
  assert.equal(gap.from_seq, 1);
  assert.equal(gap.to_seq, log.firstSeq - 1);
  assert.deepEqual(all.slice(1).map((e) => e.seq), Array.from({ length: 100 - gap.to_seq }, (_, i) => gap.to_seq + 1 + i));
});

test('the newest event is kept even when it alone exceeds the bound', () => {
  const log = new EventLog(10);
  log.append({ type: 'stdout', content: 'a'.repeat(100) });
  log.append({ type: 'stdout', content: 'b'.repeat(100) });
  assert.equal(log.firstSeq, 2);
  assert.equal([...log.events()].length, 1);
});

test('a slow reader does not hold the writer back', async () => {
  const log = new EventLog();
  const it = log.follow(1)[Symbol.asyncIterator]();
  for (let i = 0; i < 10_000; i++) log.append({ type: 'stdout', content: 'z' });
  log.close();
  let count = 0;
  for (let r = await it.next(); !r.done; r = await it.next()) count += r.value.length;
  assert.equal(count, 10_000);
});

test('many followers waiting share one wake-up and all see the event', async () => {
  const log = new EventLog();
  const readers = Array.from({ length: 100 }, () => drain(log.follow(1)));
  log.append({ type: 'stdout', content: 'x' });
  log.close();
  for (const r of await Promise.all(readers)) assert.equal(r.length, 1);
});
