#!/usr/bin/env node
// Sluice streaming benchmark: `npm run bench` (builds first).
//
// Starts a real server (the CLI's `serve`, on a free loopback port, with its own data dir) and
// measures, in the same run, the sandboxed path against a raw baseline: the same Python program
// as a bare process on a pipe (`/usr/bin/python3 -u -c …`, stdout read directly).
//
//   1. request → first stdout byte of `print(1)` in a new session, vs spawn → first byte;
//   2. per-line latency: the program prints its own time.time_ns() every 20 ms, the client
//      subtracts it from the arrival time (same host clock); read with fetch and with node:http;
//   3. one stream's throughput: ~200 MiB of text lines, request → done, read by a plain SSE
//      client (protocol's decoder) and by the TypeScript SDK;
//   4. the server's RSS (from /proc/<pid>/status) along the way, and once all that output is finished;
//   5. agent runs: bench/agent.mjs (first token, per-event overhead, one tool round);
//   6. BENCH_LOAD_SESSIONS (500) concurrent slow printers, slow readers among them: bench/load.mjs;
//   7. Jupyter Server beside Sluice: bench/jupyter.mjs (the kernel rows);
//      MCP (print → the client's notification): bench/mcp.mjs; the event log through Redis
//      Streams beside the in-memory one: bench/redis-log.mjs (needs redis-server);
//   8. the scoreboard: each bench's headline figures (recordFigure in common.mjs) against the
//      targets of issue 13, in one table (docs/performance.md keeps the latest).
//
// The server is stopped and its data dir removed on every exit path, errors and Ctrl-C included.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExecutionEvent } from '../packages/protocol/dist/index.js';
import { Sluice } from '../packages/sdk/dist/index.js';
import { NEW_SESSION_SPACING_MS, ROOT, calibrateClock, contractEvents, fmtMs, fmtRatio, intEnv, median, pause, pct, postStreamHTTP, recordFigure, startServer, table, toWall } from './common.mjs';

const PYTHON = '/usr/bin/python3';

/** Sizes, overridable for quick runs: BENCH_RUNS, BENCH_LINES, BENCH_MIB. */
const FIRST_BYTE_RUNS = intEnv('BENCH_RUNS', 20);
const LATENCY_LINES = intEnv('BENCH_LINES', 100);
const LATENCY_INTERVAL_S = 0.02;
const THROUGHPUT_MIB = intEnv('BENCH_MIB', 200);
const THROUGHPUT_REPEATS = 3;
const KERNEL_RUNS = intEnv('BENCH_KERNEL_RUNS', 30);
const PROGRESS_CALLS = intEnv('BENCH_PROGRESS_CALLS', 2000);
const PROGRESS_RUNS = intEnv('BENCH_PROGRESS_RUNS', 5);
const OUTPUT_LIMIT = 256 * 1024 * 1024;
/** Concurrent streams in bench/load.mjs (its own LOAD_SESSIONS when run alone). */
const LOAD_SESSIONS = intEnv('BENCH_LOAD_SESSIONS', 500);
// Long enough for every stream to be live at once: starting 500 sandboxes, 12 at a time, took
// 118–145 s on 2 cores (5 December), so programs of 120 s left some done before the last began.
const LOAD_SECONDS = intEnv('BENCH_LOAD_SECONDS', 180);

const PRINT_1 = 'print(1)';
const LATENCY_CODE = [
  'import sys, time',
  `for _ in range(${LATENCY_LINES}):`,
  '    sys.stdout.write(f"{time.time_ns()}\\n")',
  '    sys.stdout.flush()',
  `    time.sleep(${LATENCY_INTERVAL_S})`,
].join('\n');
// 64 KiB blocks of 64-byte text lines (so the JSON carries newline escapes, like real output).
const THROUGHPUT_CODE = [
  'import sys',
  'block = (b"x" * 63 + b"\\n") * 1024',
  'w = sys.stdout.buffer.write',
  `for _ in range(${THROUGHPUT_MIB * 16}):`,
  '    w(block)',
  'sys.stdout.buffer.flush()',
].join('\n');
const THROUGHPUT_BYTES = THROUGHPUT_MIB * 16 * 65536;

/** Children to kill if the bench stops early. */
const children = new Set();
let server = null;


// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------
async function startBenchServer() {
  server = await startServer({
    tag: 'bench',
    env: { SLUICE_OUTPUT_LIMIT: String(OUTPUT_LIMIT), SLUICE_MAX_OUTPUT_LIMIT: String(OUTPUT_LIMIT) },
  });
  return server;
}

async function stopServer() {
  const s = server;
  server = null;
  await s?.stop();
}

/** CPU seconds (user + system) the server process has used, from /proc/<pid>/stat. */
async function serverCPU() {
  const stat = await readFile(`/proc/${server.proc.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime (fields 14, 15)
}
const CLOCK_TICKS = 100;
const clientCPU = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** VmRSS and VmHWM of the server process, in MiB. */
async function serverMemory() {
  const status = await readFile(`/proc/${server.proc.pid}/status`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

/** serverMemory() once two readings 500 ms apart differ by under 2 MiB (at most 15 s). */
async function settledMemory() {
  let last = await serverMemory();
  for (const deadline = performance.now() + 15_000; performance.now() < deadline; ) {
    await pause(500);
    const now = await serverMemory();
    if (Math.abs(now.rss - last.rss) < 2) return now;
    last = now;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------
// Clients: SSE to the server, or a bare pipe
// ---------------------------------------------------------------------------------------------

/**
 * Runs code in `session` over SSE (`POST /stream`), calling onEvent(event, arrivalPerfNow) for
 * every event, and returns the done event. Throws unless the run ends with a clean `done`.
 */
async function streamRun(session, body, onEvent) {
  const res = await fetch(`${server.url}/api/sessions/${encodeURIComponent(session)}/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
  return checkedDone(contractEvents(res.body, parseExecutionEvent), onEvent);
}

/** Hands each event to onEvent; the run's `done`, which must be a clean exit (no output truncated). */
async function checkedDone(events, onEvent) {
  let done = null;
  for await (const { ev, at } of events) {
    if (ev.type === 'truncated') throw new Error(`output truncated: ${ev.dropped_bytes} bytes of ${ev.stream} dropped`);
    onEvent?.(ev, at);
    if (ev.type === 'done') done = ev;
  }
  if (!done) throw new Error('stream ended without done');
  if (done.reason !== 'exited' || done.exit_code !== 0) throw new Error(`run ended with ${done.reason} (exit ${done.exit_code})`);
  return done;
}

/** streamRun with node:http as the client instead of fetch (postStreamHTTP). */
async function streamRunHTTP(session, body, onEvent) {
  const res = await postStreamHTTP(`${server.url}/api/sessions/${encodeURIComponent(session)}/stream`, body);
  return checkedDone(contractEvents(res, parseExecutionEvent), onEvent);
}

async function deleteSession(session) {
  const res = await fetch(`${server.url}/api/sessions/${encodeURIComponent(session)}`, { method: 'DELETE' });
  await res.arrayBuffer();
}

/** Spawns the bare baseline: python3 -u -c code, stdout on a pipe; onData(buf, arrivalPerfNow). */
function bareRun(code, onData) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(PYTHON, ['-u', '-c', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stdout.on('data', (buf) => onData?.(buf, performance.now()));
    child.stderr.setEncoding('utf8').on('data', (t) => (stderr += t));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      if (code === 0) resolveRun();
      else reject(new Error(`bare python exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------
let sessionCounter = 0;
const newSession = (tag) => `bench-${tag}-${process.pid}-${++sessionCounter}`;

/** Request → first stdout event of print(1) in a brand-new session (session deleted after). */
async function sluiceFirstByte() {
  const session = newSession('fb');
  const t0 = performance.now();
  let first = NaN;
  const done = await streamRun(session, { code: PRINT_1, language: 'python', mode: 'process' }, (ev, at) => {
    if (ev.type === 'stdout' && Number.isNaN(first)) first = at - t0;
  });
  const total = performance.now() - t0;
  await deleteSession(session);
  if (Number.isNaN(first)) throw new Error(`no stdout event (done: ${JSON.stringify(done)})`);
  return { first, total };
}

/** spawn → first stdout byte of the same program, bare. */
async function bareFirstByte() {
  const t0 = performance.now();
  let first = NaN;
  await bareRun(PRINT_1, (_buf, at) => {
    if (Number.isNaN(first)) first = at - t0;
  });
  return { first, total: performance.now() - t0 };
}

/**
 * Kernel mode: a cold start (first cell of a new session, which starts the kernel), then
 * `KERNEL_RUNS` warm round trips of `1 + 1` (request → done, with its `result`), against a
 * process-mode `print(1)` in the same session and a bare `python3 -c 'print(1)'` start.
 */
async function kernelRoundTrips() {
  const session = newSession('kernel');
  await pause(NEW_SESSION_SPACING_MS);
  const t0 = performance.now();
  await streamRun(session, { code: 'x = 1', language: 'python', mode: 'kernel' });
  const cold = performance.now() - t0;
  const warm = [];
  const proc = [];
  const bare = [];
  for (let i = 0; i < KERNEL_RUNS; i++) {
    let result = null;
    const t1 = performance.now();
    await streamRun(session, { code: '1 + 1', language: 'python', mode: 'kernel' }, (ev) => {
      if (ev.type === 'result') result = ev.data['text/plain'];
    });
    warm.push(performance.now() - t1);
    if (result !== '2') throw new Error(`kernel answered ${JSON.stringify(result)} to 1 + 1`);
    const t2 = performance.now();
    await streamRun(session, { code: PRINT_1, language: 'python', mode: 'process' });
    proc.push(performance.now() - t2);
    const t3 = performance.now();
    await bareRun(PRINT_1);
    bare.push(performance.now() - t3);
  }
  await deleteSession(session);
  return { cold, warm, proc, bare };
}

/**
 * The kernel's own time: the kernel script driven directly over its control (fd 4) and events
 * (fd 3) sockets, no server, no sandbox: `execute` written → the cell's end read (the Python
 * kernel's fence line on fd 3, the JavaScript kernel's `cell_done` on fd 4), for `1 + 1`
 * (its result is a sync line on fd 3, answered here as the server answers it).
 * This is what a cell costs inside the kernel; the rest of a round trip is HTTP and the server.
 */
async function kernelOwnTimes(language) {
  const runtime = join(ROOT, 'packages/sandbox/runtime');
  const [cmd, args] =
    language === 'python' ? [PYTHON, ['-u', join(runtime, 'kernels/python_kernel.py')]] : [process.execPath, [join(runtime, 'kernels/node_kernel.js')]];
  const work = await mkdtemp(join(tmpdir(), 'sluice-bench-kernel-'));
  const child = spawn(cmd, args, {
    cwd: work,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SLUICE_EVENTS_FD: '3',
      SLUICE_CONTROL_FD: '4',
      SLUICE_KERNEL_SCOPE: 'descendants',
      PYTHONPATH: join(runtime, 'python'),
      PYTHONDONTWRITEBYTECODE: '1',
      NODE_PATH: join(runtime, 'node'),
    },
  });
  child.stdout.resume();
  child.stderr.resume();
  // A kernel killed with answers it has not read yet resets its sockets (ECONNRESET here).
  for (const fd of [3, 4]) child.stdio[fd].on('error', () => {});
  let waiting = null;
  const lines = (stream, onMessage) => {
    let buf = '';
    stream.setEncoding('utf8').on('data', (t) => {
      buf += t;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        onMessage(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    });
  };
  lines(child.stdio[3], (msg) => {
    if (msg.sync === true) child.stdio[3].write(Buffer.from([6]));
    // A kernel's cell ends with its fence, which carries the cell's end.
    if (waiting && waiting.type === 'sluice.cell_done' && msg.fence !== undefined && msg.done) {
      const w = waiting;
      waiting = null;
      w.resolve(msg.done);
    }
  });
  lines(child.stdio[4], (msg) => {
    if (waiting && msg.type === waiting.type) {
      const w = waiting;
      waiting = null;
      w.resolve(msg);
    }
  });
  const next = (type) => new Promise((resolve) => (waiting = { type, resolve }));
  await next('sluice.kernel_ready');
  const times = [];
  for (let i = 0; i < KERNEL_RUNS * 10; i++) {
    const done = next('sluice.cell_done');
    const t0 = performance.now();
    child.stdio[4].write(`${JSON.stringify({ type: 'execute', nonce: i.toString(16).padStart(32, '0'), code: '1 + 1' })}\n`);
    const m = await done;
    times.push(performance.now() - t0);
    if (m.exit_code !== 0) throw new Error(`the ${language} kernel failed 1 + 1`);
  }
  child.kill('SIGKILL');
  await rm(work, { recursive: true, force: true });
  return times;
}

/**
 * What a helper call costs inside a sandbox: PROGRESS_CALLS `progress()` calls in a Python
 * process-mode run (each a sync line that waits for the server's answer, so its event is placed
 * exactly), beside the same number of raw lines written to fd 3 without waiting. Timed inside
 * the program; medians over PROGRESS_RUNS runs.
 */
async function progressCost() {
  const session = newSession('progress');
  const code = [
    'import os, time',
    'from sluice import progress',
    `n = ${PROGRESS_CALLS}`,
    't = time.perf_counter()',
    'for i in range(n):',
    '    progress(percent=i % 100)',
    'sync = (time.perf_counter() - t) / n',
    'line = b\'{"type":"progress","percent":1}\\n\'',
    't = time.perf_counter()',
    'for i in range(n):',
    '    os.write(3, line)',
    'raw = (time.perf_counter() - t) / n',
    'print(sync * 1e6, raw * 1e6)',
  ].join('\n');
  const sync = [];
  const raw = [];
  for (let i = 0; i < PROGRESS_RUNS; i++) {
    let out = '';
    await streamRun(session, { code, language: 'python', mode: 'process' }, (ev) => {
      if (ev.type === 'stdout') out += ev.content;
    });
    const [s, r] = out.trim().split(' ').map(Number);
    sync.push(s);
    raw.push(r);
  }
  await deleteSession(session);
  return { sync, raw };
}

/** Splits arriving text into lines; each complete line gets the arrival time of its last chunk. */
function lineLatencies() {
  const out = [];
  let partial = '';
  return {
    out,
    push(text, at) {
      const wall = toWall(at);
      partial += text;
      let nl;
      while ((nl = partial.indexOf('\n')) !== -1) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        const printedMs = Number(BigInt(line) / 1000n) / 1000; // ns → ms, µs precision
        out.push(wall - printedMs);
      }
    },
  };
}

/**
 * The program's lines read over SSE, with fetch (streamRun) or with node:http: the same request,
 * decoder and checks. Between lines the client sleeps; fetch's stack (undici, web streams) costs
 * it more CPU and more work per wake-up than node:http's, so both are measured.
 */
async function sluiceLatency(client = 'fetch') {
  const session = newSession('lat');
  const lines = lineLatencies();
  const body = { code: LATENCY_CODE, language: 'python', mode: 'process', timeout: 60 };
  const onEvent = (ev, at) => {
    if (ev.type === 'stdout') lines.push(ev.content, at);
  };
  await (client === 'fetch' ? streamRun(session, body, onEvent) : streamRunHTTP(session, body, onEvent));
  await deleteSession(session);
  if (lines.out.length !== LATENCY_LINES) throw new Error(`got ${lines.out.length} latency lines, expected ${LATENCY_LINES}`);
  return lines.out;
}

async function bareLatency() {
  const lines = lineLatencies();
  const decoder = new TextDecoder();
  await bareRun(LATENCY_CODE, (buf, at) => lines.push(decoder.decode(buf, { stream: true }), at));
  if (lines.out.length !== LATENCY_LINES) throw new Error(`got ${lines.out.length} bare latency lines, expected ${LATENCY_LINES}`);
  return lines.out;
}

/** Request → done at the SSE client; counts the UTF-8 bytes of every stdout event's content. */
async function sluiceThroughput() {
  const session = newSession('tp');
  let bytes = 0;
  let chunks = 0;
  const cpu0 = [await serverCPU(), clientCPU()];
  const t0 = performance.now();
  await streamRun(session, { code: THROUGHPUT_CODE, language: 'python', mode: 'process', timeout: 120 }, (ev) => {
    if (ev.type === 'stdout') {
      bytes += Buffer.byteLength(ev.content);
      chunks++;
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  const serverCPUs = (await serverCPU()) - cpu0[0];
  const clientCPUs = clientCPU() - cpu0[1];
  await deleteSession(session);
  if (bytes !== THROUGHPUT_BYTES) throw new Error(`received ${bytes} content bytes, expected ${THROUGHPUT_BYTES}`);
  return { mbps: bytes / 1e6 / seconds, seconds, chunks, serverCPUs, clientCPUs };
}

/**
 * The same stream read by the TypeScript SDK (`session.stream`, which decodes SSE with protocol's
 * decoder and turns every event into the SDK's typed event): request → done inside the client.
 */
async function sdkThroughput() {
  const session = newSession('tp-sdk');
  const sluice = new Sluice({ baseURL: server.url });
  let bytes = 0;
  let chunks = 0;
  let done = null;
  const cpu0 = [await serverCPU(), clientCPU()];
  const t0 = performance.now();
  for await (const ev of sluice.session(session).stream(THROUGHPUT_CODE, { language: 'python', mode: 'process', timeout: 120 })) {
    if (ev.type === 'stdout') {
      bytes += Buffer.byteLength(ev.content);
      chunks++;
    } else if (ev.type === 'done') done = ev;
  }
  const seconds = (performance.now() - t0) / 1000;
  const serverCPUs = (await serverCPU()) - cpu0[0];
  const clientCPUs = clientCPU() - cpu0[1];
  await deleteSession(session);
  if (done?.reason !== 'exited') throw new Error(`SDK stream ended with ${JSON.stringify(done)}`);
  if (bytes !== THROUGHPUT_BYTES) throw new Error(`the SDK received ${bytes} content bytes, expected ${THROUGHPUT_BYTES}`);
  return { mbps: bytes / 1e6 / seconds, seconds, chunks, serverCPUs, clientCPUs };
}

async function bareThroughput() {
  let bytes = 0;
  let chunks = 0;
  const t0 = performance.now();
  await bareRun(THROUGHPUT_CODE, (buf) => {
    bytes += buf.length;
    chunks++;
  });
  const seconds = (performance.now() - t0) / 1000;
  if (bytes !== THROUGHPUT_BYTES) throw new Error(`bare run wrote ${bytes} bytes, expected ${THROUGHPUT_BYTES}`);
  return { mbps: bytes / 1e6 / seconds, seconds, chunks };
}

// ---------------------------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------------------------




const log = (msg) => process.stderr.write(`… ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
async function main() {
  const benchStart = performance.now();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Sluice bench — node ${process.version}, ${availableParallelism()} cores (${cpu}), ${process.platform} ${process.arch}`);
  const pyVersion = await new Promise((r) => {
    let out = '';
    const c = spawn(PYTHON, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.on('data', (b) => (out += b));
    c.on('close', () => r(out.trim()));
    c.on('error', () => r('python3: not found'));
  });
  console.log(`baseline: ${PYTHON} -u -c … on a pipe (${pyVersion}); sluice: POST /api/sessions/{id}/stream (SSE), bubblewrap sandbox\n`);

  calibrateClock();
  log('starting server');
  await startBenchServer();
  const memIdle = await serverMemory();

  // Warm up both paths once (page cache, JIT, first sandbox setup), not counted.
  log('warming up');
  await sluiceFirstByte();
  await bareFirstByte();

  // 1. First byte, alternating so drift affects both sides alike.
  log(`first byte: ${FIRST_BYTE_RUNS} runs each`);
  const fbS = [];
  const fbB = [];
  const totS = [];
  const totB = [];
  for (let i = 0; i < FIRST_BYTE_RUNS; i++) {
    await pause(NEW_SESSION_SPACING_MS);
    const s = await sluiceFirstByte();
    fbS.push(s.first);
    totS.push(s.total);
    const b = await bareFirstByte();
    fbB.push(b.first);
    totB.push(b.total);
  }

  // 2. Line latency.
  log(`line latency: ${LATENCY_LINES} lines every ${LATENCY_INTERVAL_S * 1000} ms, each side (Sluice read with fetch, then node:http)`);
  // Anchored again right before each: once the wall clock moved ~0.4 ms against the monotonic
  // one between the start and here, and the raw pipe's line came out "before" it was printed.
  calibrateClock();
  const latB = await bareLatency();
  calibrateClock();
  const latS = await sluiceLatency('fetch');
  calibrateClock();
  const latH = await sluiceLatency('node:http');
  const memAfterLatency = await serverMemory();

  // 3. Throughput.
  log(`throughput: ${THROUGHPUT_MIB} MiB × ${THROUGHPUT_REPEATS} runs, each side`);
  const tpS = [];
  const tpB = [];
  const tpSDK = [];
  for (let i = 0; i < THROUGHPUT_REPEATS; i++) {
    tpB.push(await bareThroughput());
    tpS.push(await sluiceThroughput());
    tpSDK.push(await sdkThroughput());
  }
  // Finished output only: every run above is over, its log kept for the retention period (and
  // written to disk in the background: RSS is read once it has stopped falling, within 15 s).
  const memAfterThroughput = await settledMemory();
  // 4. Kernel round trips.
  log(`kernel: cold start, then ${KERNEL_RUNS} warm 1 + 1 cells, process-mode and bare print(1) alternating`);
  const kern = await kernelRoundTrips();
  log(`kernel own time: ${KERNEL_RUNS * 10} cells of 1 + 1 straight over the kernel's pipes, python and javascript`);
  const ownPy = await kernelOwnTimes('python');
  const ownJS = await kernelOwnTimes('javascript');
  log(`progress(): ${PROGRESS_RUNS} runs of ${PROGRESS_CALLS} calls, against as many raw fd-3 writes`);
  const prog = await progressCost();
  const memAfter = await serverMemory();
  const sessionsLeft = await fetch(`${server.url}/api/sessions`).then((r) => r.json());

  // Report.
  const rows = [];
  const msRow = (name, s, b) => rows.push([name, fmtMs(s), fmtMs(b), fmtRatio(s / b)]);
  msRow(`first stdout byte, median (n=${FIRST_BYTE_RUNS})`, median(fbS), median(fbB));
  msRow(`first stdout byte, p90`, pct(fbS, 90), pct(fbB, 90));
  msRow(`print(1) request → done, median`, median(totS), median(totB));
  msRow(`line latency, median (n=${LATENCY_LINES})`, median(latS), median(latB));
  msRow(`line latency, p99`, pct(latS, 99), pct(latB, 99));
  msRow(`line latency, max`, Math.max(...latS), Math.max(...latB));
  msRow(`  the same read with node:http, median`, median(latH), median(latB));
  msRow(`  the same read with node:http, p99`, pct(latH, 99), pct(latB, 99));
  const bestS = tpS.reduce((a, b) => (b.mbps > a.mbps ? b : a));
  const bestB = tpB.reduce((a, b) => (b.mbps > a.mbps ? b : a));
  const medTp = (v) => median(v.map((x) => x.mbps));
  const tpRatio = (s, b) => `${(s / b).toFixed(3)}× (${(b / s).toFixed(1)}× slower)`;
  rows.push([
    `throughput, ${THROUGHPUT_MIB} MiB, median of ${THROUGHPUT_REPEATS}`,
    `${medTp(tpS).toFixed(0)} MB/s`,
    `${medTp(tpB).toFixed(0)} MB/s`,
    tpRatio(medTp(tpS), medTp(tpB)),
  ]);
  rows.push([
    `  the same read by the TypeScript SDK (session.stream)`,
    `${medTp(tpSDK).toFixed(0)} MB/s`,
    `${medTp(tpB).toFixed(0)} MB/s`,
    tpRatio(medTp(tpSDK), medTp(tpB)),
  ]);
  rows.push([
    `throughput, best run (time; chunks)`,
    `${bestS.mbps.toFixed(0)} MB/s (${bestS.seconds.toFixed(2)} s; ${bestS.chunks})`,
    `${bestB.mbps.toFixed(0)} MB/s (${bestB.seconds.toFixed(2)} s; ${bestB.chunks})`,
    tpRatio(bestS.mbps, bestB.mbps),
  ]);
  rows.push([
    `  CPU in best sluice run: server; client`,
    `${bestS.serverCPUs.toFixed(2)} s; ${bestS.clientCPUs.toFixed(2)} s`,
    '',
    '',
  ]);
  console.log(table(['metric', 'sluice (SSE)', 'bare pipe', 'sluice / bare'], rows));

  console.log(`\nkernel mode (python; request → done over SSE; bare = spawn → exit of ${PYTHON} -c 'print(1)')`);
  console.log(
    table(
      ['what', 'median', 'p90', 'vs bare process start'],
      [
        ['kernel, warm 1 + 1 (with its result)', fmtMs(median(kern.warm)), fmtMs(pct(kern.warm, 90)), fmtRatio(median(kern.warm) / median(kern.bare))],
        ['process mode print(1), same session', fmtMs(median(kern.proc)), fmtMs(pct(kern.proc, 90)), fmtRatio(median(kern.proc) / median(kern.bare))],
        ['bare python3 -c print(1)', fmtMs(median(kern.bare)), fmtMs(pct(kern.bare, 90)), '1'],
        ['kernel cold start (first cell of a session)', fmtMs(kern.cold), '', fmtRatio(kern.cold / median(kern.bare))],
        ['python kernel own time, 1 + 1 (execute → its end on its pipes)', fmtMs(median(ownPy)), fmtMs(pct(ownPy, 90)), fmtRatio(median(ownPy) / median(kern.bare))],
        ['javascript kernel own time, 1 + 1', fmtMs(median(ownJS)), fmtMs(pct(ownJS, 90)), fmtRatio(median(ownJS) / median(kern.bare))],
      ],
    ),
  );

  const us = (v) => `${v.toFixed(1)} µs`;
  console.log(`\nprogress() per call, python in a sandbox (median of ${PROGRESS_RUNS} runs of ${PROGRESS_CALLS} calls)`);
  console.log(
    table(
      ['what', 'per call', 'vs raw write'],
      [
        ['progress(): sync line, returns once the server placed it', us(median(prog.sync)), fmtRatio(median(prog.sync) / median(prog.raw))],
        ['raw os.write of an event line to fd 3 (no wait, order as read)', us(median(prog.raw)), '1'],
      ],
    ),
  );

  const mib = (m) => `${m.toFixed(0)} MiB`;
  console.log('\nserver memory (/proc/<pid>/status)');
  console.log(
    table(
      ['when', 'VmRSS', 'VmHWM (peak)'],
      [
        ['idle, after /healthz', mib(memIdle.rss), mib(memIdle.hwm)],
        ['after first-byte + latency runs', mib(memAfterLatency.rss), mib(memAfterLatency.hwm)],
        [`after ${THROUGHPUT_REPEATS * 2}×${THROUGHPUT_MIB} MiB throughput runs (finished)`, mib(memAfterThroughput.rss), mib(memAfterThroughput.hwm)],
        ['at the end (kernel and progress runs too)', mib(memAfter.rss), mib(memAfter.hwm)],
      ],
    ),
  );
  console.log(`RSS growth: ${mib(memAfter.rss - memIdle.rss)}`);

  recordFigure('first_stdout', { sluice: median(fbS), sluiceP99: pct(fbS, 99), baseline: median(fbB) });
  recordFigure('line_latency', {
    sluice: median(latH),
    sluiceP99: pct(latH, 99),
    fetch: median(latS),
    fetchP99: pct(latS, 99),
    baseline: median(latB),
    baselineP99: pct(latB, 99),
  });
  recordFigure('sse_throughput', { sluice: medTp(tpSDK), plain: medTp(tpS), baseline: medTp(tpB) });
  recordFigure('rss_finished', { sluice: memAfterThroughput.rss, baseline: memIdle.rss, mib: THROUGHPUT_REPEATS * 2 * THROUGHPUT_MIB });
  const leftover = Array.isArray(sessionsLeft?.sessions) ? sessionsLeft.sessions.length : '?';
  console.log(`sessions left on the server: ${leftover}; bench took ${((performance.now() - benchStart) / 1000).toFixed(1)} s`);
}

async function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await stopServer();
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping the server…\n`);
    cleanup().finally(() => process.exit(130));
  });
}

/** The headline rows of issue 13, each against its target; figures come from every bench's recordFigure. */
const SCOREBOARD = [
  {
    key: 'first_stdout',
    label: 'new session, process print(1): request → first stdout',
    sluice: (f) => fmtMs(f.sluice),
    baseline: (f) => `bare spawn → first byte ${fmtMs(f.baseline)}`,
    ratio: (f) => f.sluice / f.baseline,
    target: '≤ 1.5× bare',
    met: (f) => f.sluice / f.baseline <= 1.5,
  },
  {
    key: 'warm_ws',
    label: 'warm kernel 1 + 1 → done, one WebSocket',
    sluice: (f) => `${fmtMs(f.sluice)} (p99 ${fmtMs(f.sluiceP99)}; young server ${fmtMs(f.young)})`,
    baseline: (f) => `Jupyter WS, NODELAY both ends ${fmtMs(f.baseline)}; stock ${fmtMs(f.stock)}`,
    ratio: (f) => f.sluice / f.baseline,
    target: '≤ 1 ms median, ≤ 0.2× Jupyter',
    met: (f) => f.sluice <= 1 && f.sluice / f.baseline <= 0.2,
  },
  {
    key: 'warm_sse',
    label: 'the same over SSE (keep-alive, node:http client)',
    sluice: (f) => `${fmtMs(f.sluice)} (p99 ${fmtMs(f.sluiceP99)}; fetch client ${fmtMs(f.fetch)})`,
    baseline: (f) => `Jupyter WS, NODELAY both ends ${fmtMs(f.baseline)}`,
    ratio: (f) => f.sluice / f.baseline,
    target: '≤ 2 ms median',
    met: (f) => f.sluice <= 2,
  },
  {
    key: 'kernel_cold',
    label: 'kernel cold start (first cell of a new session)',
    sluice: (f) => fmtMs(f.sluice),
    baseline: (f) => `Jupyter kernel start → first execute ${fmtMs(f.baseline)}`,
    ratio: (f) => f.sluice / f.baseline,
    target: '≤ 50 ms',
    met: (f) => f.sluice <= 50,
  },
  {
    key: 'line_latency',
    label: 'one line, program clock → client (node:http client)',
    sluice: (f) => `median ${fmtMs(f.sluice)}, p99 ${fmtMs(f.sluiceP99)}; fetch client ${fmtMs(f.fetch)}, p99 ${fmtMs(f.fetchP99)}`,
    baseline: (f) => `raw pipe median ${fmtMs(f.baseline)}, p99 ${fmtMs(f.baselineP99)}`,
    ratio: (f) => f.sluice / f.baseline,
    target: 'median ≤ 1 ms, p99 ≤ 3 ms',
    met: (f) => f.sluice <= 1 && f.sluiceP99 <= 3,
  },
  {
    key: 'sse_throughput',
    label: 'one SSE stream, 64-byte lines, read by the TypeScript SDK',
    sluice: (f) => `${f.sluice.toFixed(0)} MB/s (plain decoder ${f.plain.toFixed(0)})`,
    baseline: (f) => `raw pipe ${f.baseline.toFixed(0)} MB/s`,
    ratio: (f) => f.sluice / f.baseline,
    target: '≥ 300 MB/s',
    met: (f) => f.sluice >= 300,
  },
  {
    key: 'kernel_throughput',
    label: 'a kernel cell printing 64-byte lines, WebSocket',
    sluice: (f) => `${f.sluice.toFixed(0)} MB/s`,
    baseline: (f) => `Jupyter ${f.baseline.toFixed(0)} MB/s`,
    ratio: (f) => f.sluice / f.baseline,
    target: '(beside Jupyter)',
    met: () => null,
  },
  {
    key: 'rss_finished',
    label: 'server RSS after big finished outputs',
    sluice: (f) => `${f.sluice.toFixed(0)} MiB after ${f.mib} MiB`,
    baseline: (f) => `idle ${f.baseline.toFixed(0)} MiB`,
    ratio: (f) => f.sluice / f.baseline,
    target: '≤ 250 MiB',
    met: (f) => f.sluice <= 250,
  },
  {
    key: 'concurrency',
    label: 'concurrent streams, slow printers, slow readers among them',
    sluice: (f) => `${f.ok}/${f.streams} complete, ${f.live} live at once, ${f.slow} slow readers; p99 ${fmtMs(f.p99)}; RSS peak ${f.rssPeak.toFixed(0)} MiB`,
    baseline: (f) => `RSS before ${f.rssBase.toFixed(0)} MiB`,
    ratio: () => NaN,
    target: '500, every event once',
    met: (f) => f.live >= 500 && f.ok === f.streams && f.once,
  },
  {
    key: 'mcp',
    label: 'MCP: print in the sandbox → the client\'s progress notification',
    sluice: (f) => `median ${fmtMs(f.median_ms)}, p99 ${fmtMs(f.p99_ms)}`,
    baseline: () => '',
    ratio: () => NaN,
    target: '(issue 15: reported)',
    met: () => null,
  },
  {
    key: 'redis_log',
    label: 'event log through Redis Streams, one writer → one follower',
    sluice: (f) => `${Math.round(f.redis).toLocaleString('en-US')} events/s; line ${fmtMs(f.redisMedian)} (p99 ${fmtMs(f.redisP99)})`,
    baseline: (f) => `in memory ${Math.round(f.memory).toLocaleString('en-US')} events/s; line ${fmtMs(f.memoryMedian)}`,
    ratio: (f) => f.redis / f.memory,
    target: '(issue 16: beside in-memory)',
    met: () => null,
  },
];

function printScoreboard(file) {
  const figures = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) if (line) figures.set(JSON.parse(line).key, JSON.parse(line));
  const rows = SCOREBOARD.map((row) => {
    const f = figures.get(row.key);
    if (!f) return [row.label, 'not measured', '', '', row.target, ''];
    const met = row.met(f);
    return [row.label, row.sluice(f), row.baseline(f), fmtRatio(row.ratio(f)), row.target, met === null ? '' : met ? 'met' : 'MISSED'];
  });
  console.log(`\nscoreboard — ${new Date().toISOString()}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(table(['figure', 'sluice', 'baseline (same run)', 'ratio', 'target', ''], rows));
}

let summaryDir = null;
try {
  summaryDir = await mkdtemp(join(tmpdir(), 'sluice-bench-summary-'));
  const summaryFile = join(summaryDir, 'figures.jsonl');
  process.env.BENCH_SUMMARY_FILE = summaryFile;
  await main();
  await cleanup();
  // Then, each in a process of its own (its own server; Ctrl-C reaches it with the rest of the
  // foreground group, and it stops what it started): agent runs; BENCH_LOAD_SESSIONS concurrent
  // streams (bench/load.mjs, slow readers among them); Jupyter Server beside Sluice.
  // Starts paced (12 at a time) and programs long enough that all of them are live together.
  const loadEnv = {
    LOAD_SESSIONS: String(LOAD_SESSIONS),
    LOAD_SECONDS: String(LOAD_SECONDS),
    LOAD_START_CONCURRENCY: '12',
    LOAD_DEADLINE: String(LOAD_SECONDS + Math.max(120, LOAD_SESSIONS / 2)),
  };
  for (const [script, env] of [['bench/agent.mjs', {}], ['bench/load.mjs', loadEnv], ['bench/jupyter.mjs', {}], ['bench/mcp.mjs', {}], ['bench/redis-log.mjs', {}]]) {
    const child = spawn(process.execPath, [join(ROOT, script)], { stdio: 'inherit', env: { ...process.env, ...env } });
    const [code, signal] = await new Promise((r) => child.once('exit', (c, s) => r([c, s])));
    if (code !== 0) throw new Error(`${script} exited with ${code ?? signal}`);
  }
  printScoreboard(summaryFile);
} catch (err) {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
  if (server?.logs) process.stderr.write(`server log:\n${server.logs}\n`);
  await cleanup().catch((e) => process.stderr.write(`cleanup failed: ${e}\n`));
  process.exitCode = 1;
} finally {
  if (summaryDir) await rm(summaryDir, { recursive: true, force: true });
}
