import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EventLog, type LogEntry, type NewEvent } from './event-log.js';
import { gapEntry, seqOf, typeOf } from './readable-log.js';

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

/** Every seq 1..lastSeq is covered exactly once by an event or a gap, in order. */
function assertCovers(all: LogEntry[], lastSeq: number): void {
  let next = 1;
  for (const e of all) {
    if (e.type === 'gap') {
      const g = JSON.parse(e.json) as { from_seq: number; to_seq: number };
      assert.equal(g.from_seq, next, 'a gap starts where the previous event ended');
      assert.equal(e.seq, g.to_seq);
      next = g.to_seq + 1;
    } else {
      assert.equal(e.seq, next, 'no seq is skipped without a gap');
      next++;
    }
  }
  assert.equal(next, lastSeq + 1);
}

test('a progress flood drops old progress, never the output, and keeps the newest progress', async () => {
  const log = new EventLog(256 * 1024);
  let prints = 0;
  for (let i = 0; i < 200_000; i++) {
    if (i % 20_000 === 0) log.append({ type: 'stdout', content: `print ${prints++}\n` });
    log.append({ type: 'progress', percent: i % 100 });
  }
  log.append({ type: 'done', exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
  log.close();
  assert.ok(log.bytes <= 256 * 1024);
  const held = [...log.events()];
  const out = held.flatMap((e) => (e.type === 'stdout' ? [e.content] : []));
  assert.deepEqual(out, Array.from({ length: 10 }, (_, i) => `print ${i}\n`));
  const progress = held.filter((e) => e.type === 'progress');
  assert.equal(progress.at(-1)?.type === 'progress' && progress.at(-1)?.percent, 99, 'the newest progress stays');
  const lost = log.evicted;
  assert.equal(lost.types.progress, 200_000 - progress.length);
  assert.equal(lost.events, 200_000 - progress.length);
  assert.equal(lost.types.stdout, undefined);
  assert.equal(lost.stdout_bytes, 0);
  const all = await drain(log.follow(1));
  assertCovers(all, log.lastSeq);
  assert.ok(all.some((e) => e.type === 'gap'));
  // A reader resuming mid-way (after many compactions) gets the same events from there.
  const mid = progress[Math.floor(progress.length / 2)]?.seq ?? 0;
  assert.deepEqual((await drain(log.follow(mid))).map((e) => e.seq), all.filter((e) => e.seq >= mid && e.type !== 'gap').map((e) => e.seq));
});

test('results go after superseded progress and before output', () => {
  const log = new EventLog(4096);
  log.append({ type: 'stdout', content: 'keep me\n' });
  for (let i = 0; i < 10; i++) log.append({ type: 'result', data: { 'text/plain': 'r'.repeat(200) } });
  for (let i = 0; i < 10; i++) log.append({ type: 'progress', percent: i });
  assert.equal(log.evicted.types.result, undefined, 'no result goes while superseded progress can');
  assert.ok((log.evicted.types.progress ?? 0) > 0);
  for (let i = 0; i < 20; i++) log.append({ type: 'result', data: { 'text/plain': 'r'.repeat(200) } });
  const held = [...log.events()];
  assert.equal(held[0]?.type === 'stdout' && held[0].content, 'keep me\n');
  const progress = held.filter((e) => e.type === 'progress');
  assert.deepEqual(progress.map((e) => e.percent), [9], 'only the newest progress is left');
  assert.ok((log.evicted.types.result ?? 0) > 0);
  assert.equal(log.evicted.types.stdout, undefined);
});

test('output dropped from the front is counted in bytes, per stream', () => {
  const log = new EventLog(1000);
  for (let i = 0; i < 20; i++) log.append({ type: i % 2 ? 'stderr' : 'stdout', content: 'é'.repeat(50) });
  const lost = log.evicted;
  assert.ok(lost.events > 0);
  assert.equal(lost.from_seq, 1);
  assert.equal(lost.to_seq, log.firstSeq - 1);
  assert.equal(lost.stdout_bytes + lost.stderr_bytes, lost.events * 100, 'UTF-8 bytes of the content');
  assert.equal(lost.stdout_bytes, (lost.types.stdout ?? 0) * 100);
});

test('release keeps only the newest event and tells the reader what is gone', async () => {
  const log = new EventLog();
  for (let i = 0; i < 100; i++) log.append({ type: 'stdout', content: 'x' });
  log.append({ type: 'done', exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited' });
  log.close();
  log.release();
  const all = await drain(log.follow(1));
  assert.deepEqual(all.map((e) => e.type), ['gap', 'done']);
  assert.equal(log.evicted.events, 100);
});

test('the counted bytes cover the memory the log really holds', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const floods: [string, (i: number) => NewEvent, number][] = [
    ['tiny progress', (i) => ({ type: 'progress', percent: i % 100 }), 1e12],
    ['tiny output', () => ({ type: 'stdout', content: 'x' }), 1e12],
    ['two-byte output', (i) => ({ type: 'stdout', content: `中文${i}` }), 1e12],
    ['64 KiB output', () => ({ type: 'stdout', content: 'z'.repeat(65536) }), 1e12],
    ['64 KiB of escaped output (384 KiB of JSON)', () => ({ type: 'stdout', content: '\x01'.repeat(65536) }), 1e12],
    ['bounded progress flood with prints', (i) => (i % 50 ? { type: 'progress', percent: i % 100, message: 'step' } : { type: 'stdout', content: `line ${i}\n` }), 4 * 1024 * 1024],
  ];
  // Compile the code paths first: code space counts in heapUsed too.
  for (const [, make, max] of floods) {
    const warm = new EventLog(max);
    for (let i = 0; i < 200; i++) warm.append(make(i));
  }
  // Every log stays alive to the end, so each measurement sees only its own log's memory.
  const kept: EventLog[] = [];
  for (const [name, make, max] of floods) {
    const n = name.startsWith('64 KiB') ? 100 : 50_000;
    const before = heap();
    const log = new EventLog(max);
    kept.push(log);
    for (let i = 0; i < n; i++) log.append(make(i));
    const used = heap() - before;
    assert.ok(used <= log.bytes + 64 * 1024, `${name}: ${used} bytes of heap, ${log.bytes} counted`);
  }
});

test('seqOf and typeOf read every stored event, gap entries included, as JSON.parse does', () => {
  const log = new EventLog();
  log.append({ type: 'start', execution_id: 'e', session_id: 's', language: 'python', mode: 'process' });
  for (let i = 0; i < 12; i++) log.append({ type: 'stdout', content: `"seq":${i},` });
  const jsons = [...log.snapshot(), gapEntry(3, 9).json];
  for (const json of jsons) {
    const e = JSON.parse(json) as { seq: number; type: string };
    assert.equal(seqOf(json), e.seq, json);
    assert.equal(typeOf(json), e.type, json);
  }
});
