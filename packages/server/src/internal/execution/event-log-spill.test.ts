import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLog, type LogEntry } from './event-log.js';
import { foldLog } from './fold-log.js';
import { LogBudget } from './log-budget.js';
import { LogDisk } from './log-disk.js';

const KiB = 1024;

interface Warned {
  msg: string;
}

/** A disk in a fresh directory (removed by `done`), its warnings collected. */
async function disk(maxBytes = 1024 * 1024 * KiB, minBytes = 0): Promise<{ disk: LogDisk; dir: string; warnings: Warned[]; done(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  const dir = join(root, 'logs');
  const warnings: Warned[] = [];
  const d = new LogDisk({ dir, maxBytes, minBytes, log: { warn: (_obj, msg) => warnings.push({ msg }) } });
  return {
    disk: d,
    dir,
    warnings,
    async done() {
      await d.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function drain(it: AsyncIterable<LogEntry[]>): Promise<LogEntry[]> {
  const all: LogEntry[] = [];
  for await (const batch of it) all.push(...batch);
  return all;
}

/** Polls `cond` until it holds or the deadline passes. */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A finished log with output of every shape (big, tiny, two-byte, astral, escaped) and
 * progress that its bound sheds (so readers meet gaps); `bigChars` makes two events that large.
 */
function busyLog(bigChars = 100 * KiB, maxBytes = 256 * KiB + 2 * bigChars): EventLog {
  const log = new EventLog(maxBytes);
  log.append({ type: 'start', execution_id: 'e', session_id: 's', language: 'python', mode: 'process' });
  for (let i = 0; i < 1200; i++) {
    if (i % 3 === 0) log.append({ type: 'progress', percent: i % 100, message: 'p'.repeat(500) });
    else if (i % 600 === 1) log.append({ type: 'stdout', content: 'b'.repeat(bigChars) });
    else if (i % 7 === 0) log.append({ type: 'stderr', content: `é中文😀\u0001"\\\n${i}\ud800` });
    else log.append({ type: 'stdout', content: `line ${i}\n` });
  }
  log.append({ type: 'done', exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
  log.close();
  return log;
}

/** Everything a reader can learn from a log (digests: what each reader got, byte for byte). */
async function readings(log: EventLog, froms: number[]): Promise<unknown> {
  const follows: Record<number, string> = {};
  for (const from of froms) {
    const h = createHash('sha256');
    for await (const batch of log.follow(from)) {
      // A gap's `ts` is the moment it is read: compare the rest.
      for (const e of batch) h.update(`${e.seq} ${e.type} ${e.type === 'gap' ? e.json.replace(/"ts":\d+/, '') : e.json}\n`);
    }
    follows[from] = h.digest('hex');
  }
  const digest = (jsons: string[]): string => createHash('sha256').update(jsons.join('\n')).digest('hex');
  return {
    follows,
    snapshot: digest(log.snapshot()),
    events: digest([...log.events(17)].map((e) => JSON.stringify(e))),
    fold: await foldLog(log),
    evicted: log.evicted,
    firstSeq: log.firstSeq,
    lastSeq: log.lastSeq,
  };
}

test('a finished log spills to one file: the memory it holds falls to its index, and the file is complete', async () => {
  const d = await disk();
  try {
    const log = busyLog();
    const held = log.bytes;
    const events = log.snapshot();
    d.disk.spill(log);
    await d.disk.settled();
    assert.ok(log.onDisk);
    assert.ok(log.bytes < held / 50, `${log.bytes} bytes held after the spill, ${held} before`);
    const files = await readdir(d.dir);
    assert.equal(files.length, 1);
    const size = (await stat(join(d.dir, files[0] ?? ''))).size;
    assert.equal(size, events.reduce((n, j) => n + Buffer.byteLength(j) + 1, 0));
    assert.equal(d.disk.bytes, size);
  } finally {
    await d.done();
  }
});

test('reads after the spill equal reads before: from every seq, gaps, snapshot, events, the fold and evicted', async () => {
  const d = await disk();
  try {
    const log = busyLog();
    assert.ok((log.evicted.types.progress ?? 0) > 0, 'the log has gaps');
    const froms = Array.from({ length: log.lastSeq + 2 }, (_, i) => i);
    const before = await readings(log, froms);
    d.disk.spill(log);
    await d.disk.settled();
    assert.ok(log.onDisk);
    assert.deepEqual(await readings(log, froms), before);
  } finally {
    await d.done();
  }
});

test('events longer than one read of the file come back whole', async () => {
  const d = await disk();
  try {
    const log = busyLog(1536 * KiB);
    const froms = [0, 1, 2, 3, 600, 601, 602, log.lastSeq - 1, log.lastSeq, log.lastSeq + 1];
    const before = await readings(log, froms);
    d.disk.spill(log);
    await d.disk.settled();
    assert.ok(log.onDisk);
    assert.deepEqual(await readings(log, froms), before);
  } finally {
    await d.done();
  }
});

test('events longer than one write of the file, and writes that end between events, keep every byte', async () => {
  const d = await disk();
  try {
    // Two 5 MiB events (each longer than the 4 MiB write buffer, written on their own) among
    // ~1200 small ones of every shape, so the buffer is also flushed part-way through.
    const log = busyLog(5 * 1024 * KiB);
    const froms = [0, 1, 2, 600, 601, 602, 1201, 1202, log.lastSeq - 1, log.lastSeq, log.lastSeq + 1];
    const before = await readings(log, froms);
    const size = await log.spillSize();
    d.disk.spill(log);
    await d.disk.settled();
    assert.ok(log.onDisk);
    const [name] = await readdir(d.dir);
    assert.ok(name);
    assert.equal((await stat(join(d.dir, name))).size, size, 'the file is exactly the size spillSize promised');
    assert.deepEqual(await readings(log, froms), before);
  } finally {
    await d.done();
  }
});

test('readers following across the spill get every event once, in order', async () => {
  const d = await disk();
  try {
    const log = new EventLog(64 * 1024 * KiB);
    // One follows live from the start; one is paused mid-way through the finished log.
    const live = drain(log.follow(1));
    for (let i = 0; i < 20_000; i++) log.append({ type: 'stdout', content: `${i}`.padEnd(64, '.') });
    log.append({ type: 'done', exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
    const paused = log.follow(1)[Symbol.asyncIterator]();
    const seen: number[] = [];
    const first = await paused.next();
    if (!first.done) seen.push(...first.value.map((e) => e.seq));
    log.close();
    // A third reads slowly while the spill is written (one batch per turn of the event loop).
    const slow = (async () => {
      const got: number[] = [];
      for await (const batch of log.follow(1)) {
        got.push(...batch.map((e) => e.seq));
        await new Promise((r) => setImmediate(r));
      }
      return got;
    })();
    d.disk.spill(log);
    await until(() => log.onDisk, 'the spill');
    for (let r = await paused.next(); !r.done; r = await paused.next()) seen.push(...r.value.map((e) => e.seq));
    const all = Array.from({ length: 20_001 }, (_, i) => i + 1);
    assert.deepEqual(seen, all);
    assert.deepEqual((await live).map((e) => e.seq), all);
    assert.deepEqual(await slow, all);
    assert.ok(!log.snapshot().some((j) => j.includes('"gap"')));
  } finally {
    await d.done();
  }
});

test('releasing a spilled log (retention) removes its file and says what went, like an in-memory release', async () => {
  const d = await disk();
  try {
    const kept = busyLog();
    kept.release();
    const log = busyLog();
    d.disk.spill(log);
    await d.disk.settled();
    assert.equal((await readdir(d.dir)).length, 1);
    log.release();
    assert.ok(!log.onDisk);
    await until(() => d.disk.bytes === 0, 'the disk to account for the release');
    await until(async () => (await readdir(d.dir)).length === 0, 'the file to go');
    assert.deepEqual(log.evicted, kept.evicted);
    assert.deepEqual((await drain(log.follow(1))).map((e) => e.type), ['gap', 'done']);
  } finally {
    await d.done();
  }
});

test('a reader in the middle of a spilled log that is released gets a gap up to the newest event, not an error', async () => {
  const d = await disk();
  try {
    const log = busyLog();
    d.disk.spill(log);
    await d.disk.settled();
    const it = log.follow(1)[Symbol.asyncIterator]();
    const first = await it.next();
    assert.ok(!first.done);
    const last = first.value.at(-1)?.seq ?? 0;
    log.release();
    const rest: LogEntry[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(...r.value);
    assert.deepEqual(rest.map((e) => e.type), ['gap', 'done']);
    assert.match(rest[0]?.json ?? '', new RegExp(`"from_seq":${last + 1},`));
  } finally {
    await d.done();
  }
});

test('the log budget forgets a spilled log like any finished one, and its file goes', async () => {
  const d = await disk();
  try {
    const budget = new LogBudget(8 * 1024 * KiB, d.disk);
    const forgotten: string[] = [];
    const old = new EventLog(64 * 1024 * KiB);
    budget.track(old, () => forgotten.push('old'));
    for (let i = 0; i < 100; i++) old.append({ type: 'stdout', content: 'o'.repeat(10 * KiB) });
    old.close();
    await d.disk.settled();
    assert.ok(old.onDisk);
    assert.ok(budget.bytes < 16 * KiB, `a spilled log counts only its index: ${budget.bytes} bytes`);
    // A big running log pushes the budget: finished logs are forgotten, even spilled ones.
    const big = new EventLog(64 * 1024 * KiB);
    budget.track(big, () => forgotten.push('big'));
    for (let i = 0; i < 1000; i++) big.append({ type: 'stdout', content: 'b'.repeat(10 * KiB) });
    assert.deepEqual(forgotten, ['old']);
    await until(() => d.disk.bytes === 0, 'the file to be discarded');
  } finally {
    await d.done();
  }
});

test('a previous server\'s files are removed when the disk starts', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  try {
    const dir = join(root, 'logs');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, '1.ndjson'), '{"type":"stdout","seq":1,"ts":0,"content":"old"}\n');
    await writeFile(join(dir, 'sub', 'x'), 'x');
    const d = new LogDisk({ dir, maxBytes: 1024 * KiB, log: { warn: () => {} } });
    await d.settled();
    assert.deepEqual(await readdir(dir), []);
    await d.close();
    assert.ok(!existsSync(dir), 'closing removes the directory');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('with spilling off (SLUICE_LOG_DISK_BYTES=0) a previous server\'s files are removed all the same', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  try {
    const dir = join(root, 'logs');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '1.ndjson'), '{"type":"stdout","seq":1,"ts":0,"content":"old"}\n');
    const d = new LogDisk({ dir, maxBytes: 0, log: { warn: () => {} } });
    await d.settled();
    assert.ok(!existsSync(dir));
    await d.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a log forgotten before its turn to spill never reaches the disk, however big its newest event', async () => {
  const d = await disk();
  try {
    // Queued behind a big spill, then released (retention) while it waits: its newest event,
    // an 80 KiB `done`-sized one, is all it holds, and it must not become a file nobody removes.
    const first = busyLog();
    const second = busyLog();
    second.close();
    const last = new EventLog();
    for (let i = 0; i < 100; i++) last.append({ type: 'stdout', content: `line ${i}\n` });
    last.append({ type: 'stderr', content: 'e'.repeat(80 * KiB) });
    last.close();
    d.disk.spill(first);
    d.disk.spill(last);
    last.release();
    await d.disk.settled();
    assert.ok(first.onDisk);
    assert.ok(!last.onDisk, 'the released log was written out');
    assert.equal(d.disk.count, 1);
    assert.equal((await readdir(d.dir)).length, 1);
  } finally {
    await d.done();
  }
});

test('the disk budget holds: the oldest spilled logs are forgotten to make room, a log larger than all of it stays in memory', async () => {
  const d = await disk(700 * KiB);
  try {
    const budget = new LogBudget(1024 * 1024 * KiB, d.disk);
    const forgotten: string[] = [];
    const make = (name: string, kib: number): EventLog => {
      const log = new EventLog(64 * 1024 * KiB);
      budget.track(log, () => forgotten.push(name));
      for (let i = 0; i < kib; i++) log.append({ type: 'stdout', content: 'x'.repeat(1000) });
      log.close();
      return log;
    };
    const a = make('a', 300);
    const b = make('b', 300);
    await d.disk.settled();
    assert.ok(a.onDisk && b.onDisk);
    const c = make('c', 300);
    await d.disk.settled();
    assert.deepEqual(forgotten, ['a'], 'the oldest went to make room');
    assert.ok(c.onDisk && b.onDisk && !a.onDisk);
    assert.ok(d.disk.bytes <= 700 * KiB, `${d.disk.bytes} bytes on disk`);
    assert.equal((await readdir(d.dir)).length, 2);
    const huge = make('huge', 800);
    await d.disk.settled();
    assert.ok(!huge.onDisk, 'larger than the whole disk budget: kept in memory');
    assert.deepEqual(forgotten, ['a'], 'and nothing was forgotten for it');
    assert.equal(huge.snapshot().length, 800);
  } finally {
    await d.done();
  }
});

test('a disk that cannot be written keeps every event in memory and says so', async () => {
  // The directory cannot be made (its parent is a file).
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  try {
    await writeFile(join(root, 'file'), '');
    const warnings: string[] = [];
    const bad = new LogDisk({ dir: join(root, 'file', 'logs'), maxBytes: 1024 * KiB * KiB, minBytes: 0, log: { warn: (_o, msg) => warnings.push(msg) } });
    const log = busyLog();
    const before = await readings(log, [1, 100, 2000]);
    bad.spill(log);
    await bad.settled();
    assert.ok(!log.onDisk);
    assert.equal(warnings.length, 1);
    assert.deepEqual(await readings(log, [1, 100, 2000]), before);
    await bad.close();

    // The directory disappears after start: the write itself fails.
    const d = await disk();
    try {
      await d.disk.settled();
      await rm(d.dir, { recursive: true });
      const log2 = busyLog();
      const before2 = await readings(log2, [1, 100, 2000]);
      d.disk.spill(log2);
      await d.disk.settled();
      assert.ok(!log2.onDisk);
      assert.match(d.warnings.map((w) => w.msg).join('\n'), /could not write a finished event log to disk; it stays in memory/);
      assert.deepEqual(await readings(log2, [1, 100, 2000]), before2);
      assert.equal(d.disk.bytes, 0);
    } finally {
      await d.done();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('tiny logs stay in memory, and SLUICE_LOG_DISK_BYTES=0 spills nothing', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  try {
    const small = new LogDisk({ dir: join(root, 'a'), maxBytes: 1024 * KiB, log: { warn: () => {} } });
    const tiny = new EventLog();
    tiny.append({ type: 'stdout', content: 'hi\n' });
    tiny.close();
    small.spill(tiny);
    await small.settled();
    assert.ok(!tiny.onDisk);
    await small.close();
    const off = new LogDisk({ dir: join(root, 'b'), maxBytes: 0, minBytes: 0, log: { warn: () => {} } });
    const log = busyLog();
    off.spill(log);
    await off.settled();
    assert.ok(!log.onDisk);
    assert.ok(!existsSync(join(root, 'b')));
    await off.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a large spill returns its memory: one full collection once 32 MiB have been freed, none for small ones', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  try {
    let collections = 0;
    const d = new LogDisk({ dir: join(root, 'logs'), maxBytes: 1024 * KiB * KiB, log: { warn: () => {} }, collect: () => collections++ });
    const finished = (chunks: number): EventLog => {
      const log = new EventLog(256 * 1024 * KiB);
      for (let i = 0; i < chunks; i++) log.append({ type: 'stdout', content: 'x'.repeat(64 * KiB) });
      log.close();
      d.spill(log);
      return log;
    };
    finished(8);
    await d.settled();
    await new Promise((r) => setImmediate(r));
    assert.equal(collections, 0, 'half a MiB freed: no collection');
    const big = finished(600);
    await d.settled();
    assert.ok(big.onDisk);
    await until(() => collections === 1, 'the collection');
    await d.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

// A running log with a disk writes its older events to its file as it grows (tail-spill).

const MiB = 1024 * KiB;

/** Appends `n` stdout events of `chars` characters (each different), yielding to the event loop every few. */
async function printing(log: EventLog, n: number, chars: number, from = 0): Promise<string[]> {
  const sent: string[] = [];
  for (let i = from; i < from + n; i++) {
    const content = `${String(i).padStart(8, '0')}${'x'.repeat(chars - 9)}\n`;
    log.append({ type: 'stdout', content });
    sent.push(content);
    if (i % 4 === 3) await new Promise((r) => setImmediate(r));
  }
  return sent;
}

test('a running log holds a bounded window in memory, its older events in its file, and every reader gets every event once', async () => {
  const d = await disk();
  try {
    const log = new EventLog(512 * MiB);
    log.useDisk(d.disk);
    log.append({ type: 'start', execution_id: 'e', session_id: 's', language: 'python', mode: 'process' });
    const live = drain(log.follow(1));
    let most = 0;
    const sent: string[] = [];
    for (let round = 0; round < 10; round++) {
      sent.push(...(await printing(log, 40, 64 * KiB, round * 40)));
      most = Math.max(most, log.bytes);
    }
    await until(() => log.bytes <= 2 * MiB, 'the window to be written out');
    assert.ok(log.tailFile !== null, 'the log has its file');
    assert.ok(most < 16 * MiB, `the log held ${most} bytes at most while 25 MiB went through`);
    assert.ok(d.disk.bytes > 20 * MiB, `${d.disk.bytes} bytes counted on the disk`);
    // Readers now, from the start and from the middle, synchronous ones too.
    const stdout = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'stdout').map((e) => (JSON.parse(e.json) as { content: string }).content);
    log.append({ type: 'done', exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
    log.close();
    assert.deepEqual(stdout(await drain(log.follow(1))), sent);
    assert.deepEqual(stdout(await drain(log.follow(200))), sent.slice(198));
    assert.deepEqual(log.snapshot().map((j) => JSON.parse(j) as { seq: number }).map((e) => e.seq), Array.from({ length: 402 }, (_, i) => i + 1));
    assert.equal([...log.events(390)].length, 13);
    assert.equal((await foldLog(log)).stdout, sent.join(''));
    // The reader that followed it live got each event once, in order, and no gap.
    const got = await live;
    assert.deepEqual(got.map((e) => e.seq), Array.from({ length: 402 }, (_, i) => i + 1));
    assert.deepEqual(log.evicted.events, 0);
  } finally {
    await d.done();
  }
});

test('a running log\'s file becomes its spill when it ends: one file, counted once, the same reads', async () => {
  const d = await disk();
  try {
    const log = new EventLog(512 * MiB);
    log.useDisk(d.disk);
    await printing(log, 100, 64 * KiB);
    await until(() => log.bytes <= 2 * MiB, 'the window to be written out');
    log.append({ type: 'done', exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
    log.close();
    const froms = [0, 1, 50, 99, 100, 101, 102];
    const before = await readings(log, froms);
    d.disk.spill(log);
    await d.disk.settled();
    assert.ok(log.onDisk);
    assert.equal(log.tailFile, null);
    const files = await readdir(d.dir);
    assert.equal(files.length, 1);
    const size = (await stat(join(d.dir, files[0] ?? ''))).size;
    assert.equal(d.disk.bytes, size);
    assert.ok(log.bytes < 200 * KiB, `${log.bytes} bytes held once spilled`);
    assert.deepEqual(await readings(log, froms), before);
  } finally {
    await d.done();
  }
});

test('a running log released (retention, the server closing) loses its file and counts what went like a log in memory', async () => {
  const d = await disk();
  try {
    const onDisk = new EventLog(512 * MiB);
    onDisk.useDisk(d.disk);
    const inMemory = new EventLog(512 * MiB);
    for (const log of [onDisk, inMemory]) {
      await printing(log, 60, 64 * KiB);
      log.append({ type: 'progress', percent: 5 });
    }
    await until(() => onDisk.bytes <= 2 * MiB, 'the window to be written out');
    assert.equal((await readdir(d.dir)).length, 1);
    onDisk.release();
    inMemory.release();
    assert.deepEqual(onDisk.evicted, inMemory.evicted);
    await until(() => d.disk.bytes === 0, 'the disk to account for the release');
    await until(async () => (await readdir(d.dir)).length === 0, 'the file to go');
    onDisk.close();
    assert.deepEqual((await drain(onDisk.follow(1))).map((e) => e.type), ['gap', 'progress']);
  } finally {
    await d.done();
  }
});

test('the overflow policy leaves alone what is in the file or being written, and evicted says exactly what readers miss', async () => {
  const d = await disk();
  try {
    // A progress flood past the log's bound, output between, appends with and without pauses
    // (so that shedding happens while writes are in flight).
    await d.disk.settled();
    // Output (4 MiB) fits the bound (8 MiB) with room for what is being written; progress (12 MiB) does not.
    const log = new EventLog(8 * MiB);
    log.useDisk(d.disk);
    let n = 0;
    for (let i = 0; i < 600; i++) {
      if (i % 3 === 0) log.append({ type: 'stdout', content: `out ${i}\n`.padEnd(20 * KiB, '.') });
      else log.append({ type: 'progress', percent: i % 100, message: 'p'.repeat(30 * KiB) });
      n++;
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    log.append({ type: 'done', exit_code: 0, duration: '1.000s', duration_ms: 1000, reason: 'exited' });
    n++;
    log.close();
    await log.writesSettled();
    const got = await drain(log.follow(1));
    const held = got.filter((e) => e.type !== 'gap').map((e) => e.seq);
    const gaps = got.filter((e) => e.type === 'gap').map((e) => JSON.parse(e.json) as { from_seq: number; to_seq: number });
    const missing = gaps.reduce((k, g) => k + g.to_seq - g.from_seq + 1, 0);
    assert.equal(held.length + missing, n, 'every seq is either read or in a gap');
    assert.equal(log.evicted.events, missing, 'evicted counts exactly the events readers miss');
    assert.ok(missing > 0, 'the flood was shed');
    assert.equal(log.evicted.types.stdout ?? 0, 0, 'no output was dropped: superseded progress went first');
    assert.ok(log.tailFile !== null, 'part of it went to the file');
  } finally {
    await d.done();
  }
});

test('a disk too small for a running log: it keeps its newer events in memory and loses none', async () => {
  const d = await disk(3 * MiB);
  try {
    const log = new EventLog(512 * MiB);
    log.useDisk(d.disk);
    const sent = await printing(log, 120, 64 * KiB);
    await log.writesSettled();
    assert.ok(d.disk.bytes <= 3 * MiB, `${d.disk.bytes} bytes on a 3 MiB disk`);
    assert.ok(log.bytes > 4 * MiB, 'the rest stays in memory');
    log.close();
    const got = await drain(log.follow(1));
    assert.deepEqual(got.map((e) => (JSON.parse(e.json) as { content: string }).content), sent);
    assert.deepEqual(d.warnings, []);
  } finally {
    await d.done();
  }
});

test('a running log whose file cannot be written keeps every event in memory and says so', async () => {
  const d = await disk();
  try {
    await d.disk.settled();
    // The directory goes: the file cannot be created.
    await rm(d.dir, { recursive: true, force: true });
    const log = new EventLog(512 * MiB);
    log.useDisk(d.disk);
    const sent = await printing(log, 60, 64 * KiB);
    await until(() => d.warnings.length > 0, 'a warning');
    assert.match(d.warnings[0]?.msg ?? '', /running event log/);
    log.close();
    const got = await drain(log.follow(1));
    assert.deepEqual(got.map((e) => (JSON.parse(e.json) as { content: string }).content), sent);
    assert.equal(log.tailFile, null);
  } finally {
    await mkdir(d.dir, { recursive: true });
    await d.done();
  }
});

test('a running log that wrote 40 MiB out while it ran returns that memory when it ends: one full collection', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sluice-spill-'));
  try {
    let collections = 0;
    const d = new LogDisk({ dir: join(root, 'logs'), maxBytes: 1024 * MiB, log: { warn: () => {} }, collect: () => collections++ });
    await d.settled();
    const log = new EventLog(256 * MiB);
    log.useDisk(d);
    await printing(log, 640, 64 * KiB);
    await log.writesSettled();
    assert.ok(log.movedOut > 32 * MiB, `${log.movedOut} bytes went to the file while it ran`);
    assert.equal(collections, 0, 'none while it runs');
    log.close();
    d.spill(log);
    await d.settled();
    assert.ok(log.onDisk);
    await until(() => collections === 1, 'the collection');
    await d.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
