#!/usr/bin/env node
// The event log in Redis Streams beside the in-memory EventLog, in the same run: events/s appended
// and followed (one writer, one follower, small stdout lines), and the latency of one line from
// append to the follower (median, p99) when lines come one at a time. Starts its own redis-server
// (AOF off, and again with appendfsync always) on a free loopback port. Needs a build.
//   node bench/redis-log.mjs [events]
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventLog } from '../packages/server/dist/internal/execution/event-log.js';
import { RedisConnection } from '../packages/server/dist/internal/redis/redis-connection.js';
import { RedisLogReader, RedisLogWriter } from '../packages/server/dist/internal/redis/redis-log.js';
import { commandWorks, ensureDebianPackages, recordFigure } from './common.mjs';

const EVENTS = Number(process.argv[2] ?? 200_000);
const LATENCY_LINES = 2000;

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startRedis(aof) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', aof ? 'yes' : 'no', '--loglevel', 'warning'];
  if (aof) args.push('--appendfsync', 'always');
  const proc = spawn('redis-server', args, { stdio: 'ignore' });
  let exited = null;
  proc.once('error', (err) => (exited = err.message));
  proc.once('exit', (code, signal) => (exited ??= `exited with ${code ?? signal}`));
  const conn = new RedisConnection({ url: `redis://127.0.0.1:${port}`, prefix: 'bench:' });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await conn.reader.ping()) === 'PONG') break;
    } catch {
      // Not up yet.
    }
    if (exited !== null || Date.now() > deadline) {
      await conn.close();
      proc.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start${exited === null ? ' in 15 s' : `: ${exited}`}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    conn,
    async stop() {
      await conn.close();
      const gone = exited !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Appends EVENTS lines in bursts (a yield every 1000, as a pipe would deliver them) while one follower reads. */
async function throughput(open) {
  const { writer, reader, flushed, close } = await open();
  // Only events count: a `gap` would stand for events the log dropped, which the checks below forbid.
  let got = 0;
  const t0 = performance.now();
  let followedAt = 0;
  const following = (async () => {
    for await (const batch of reader.follow(1)) {
      for (const e of batch) if (e.type !== 'gap') got++;
      if (got >= EVENTS && followedAt === 0) followedAt = performance.now();
    }
  })();
  for (let i = 0; i < EVENTS; i++) {
    writer.append({ type: 'stdout', content: `line ${i} of the benchmark\n` });
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  await flushed();
  const appendedAt = performance.now();
  await close();
  await following;
  // A figure for events dropped on the way would be a false one.
  const dropped = writer.evicted?.events ?? 0;
  if (dropped !== 0 || got !== EVENTS || followedAt === 0) throw new Error(`the follower got ${got} of ${EVENTS} events (${dropped} dropped by the writer's bounds): the figures would be wrong`);
  return { appended: EVENTS / ((appendedAt - t0) / 1000), followed: EVENTS / ((followedAt - t0) / 1000) };
}

/** One line every millisecond; the time from append to the follower getting it. */
async function latency(open) {
  const { writer, reader, close } = await open();
  const sent = new Map();
  const lat = [];
  const following = (async () => {
    for await (const batch of reader.follow(1)) {
      const now = performance.now();
      for (const e of batch) {
        const t = sent.get(e.seq);
        if (t !== undefined) lat.push(now - t);
      }
    }
  })();
  for (let i = 0; i < LATENCY_LINES; i++) {
    const { seq } = writer.append({ type: 'stdout', content: `tick ${i}\n` });
    sent.set(seq, performance.now());
    await new Promise((r) => setTimeout(r, 1));
  }
  await close();
  await following;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { median: q(0.5), p99: q(0.99), n: lat.length };
}

const memory = async () => {
  const log = new EventLog(1024 * 1024 * 1024);
  return { writer: log, reader: log, flushed: async () => {}, close: async () => log.close() };
};

let n = 0;
const redisLog = (conn) => async () => {
  const id = `exec:bench-${process.pid}-${++n}`;
  // Bounds past the run's size: the writer may hold every event while Redis catches up (the
  // default 8 MiB of pending JSON would drop some, and the figures would count them as appended).
  const writer = await RedisLogWriter.create(conn, id, { maxBytes: 1024 * 1024 * 1024, maxEntries: 10_000_000, maxPendingBytes: 1024 * 1024 * 1024, retentionSec: 60 });
  const reader = await RedisLogReader.open(conn, id);
  return { writer, reader, flushed: () => writer.flushed(), close: () => writer.close() };
};

const rows = [];
const fmt = (x) => Math.round(x).toLocaleString('en-US');
const ms = (x) => `${x.toFixed(2)} ms`;

await ensureDebianPackages(['redis-server'], () => commandWorks('redis-server', ['--version']));
const mt = await throughput(memory);
const ml = await latency(memory);
rows.push(['EventLog (memory)', mt, ml]);
for (const aof of [false, true]) {
  const r = await startRedis(aof);
  try {
    const t = await throughput(redisLog(r.conn));
    const l = await latency(redisLog(r.conn));
    rows.push([`Redis Streams${aof ? ' (AOF, fsync always)' : ''}`, t, l]);
  } finally {
    await r.stop();
  }
}

console.log(`${EVENTS.toLocaleString('en-US')} stdout lines, one writer, one follower; latency over ${LATENCY_LINES} lines 1 ms apart\n`);
console.log('| log | appended events/s | followed events/s | line latency median | p99 |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, t, l] of rows) console.log(`| ${name} | ${fmt(t.appended)} | ${fmt(t.followed)} | ${ms(l.median)} | ${ms(l.p99)} |`);
const redisRow = rows.find(([name]) => name === 'Redis Streams');
recordFigure('redis_log', { memory: mt.followed, memoryMedian: ml.median, redis: redisRow[1].followed, redisMedian: redisRow[2].median, redisP99: redisRow[2].p99 });
