#!/usr/bin/env node
// Sluice bounded load test: `npm run bench:load` (builds first). Loopback only; stops by itself.
//
// Starts a real server (the CLI's `serve`, free loopback port, its own data dir) with the
// admission caps raised, then starts LOAD_SESSIONS (200) runs at once, each in its own new
// session through POST /api/sessions/{id}/stream, each read by its own SSE client in this
// process. Every program prints `<i> <time.time_ns()>` every LOAD_INTERVAL_MS (100 ms) for
// LOAD_SECONDS (10 s): many concurrent live streams, little CPU. The client subtracts the
// printed time from the arrival time (same host clock) for every line.
//
// Every 250 ms it samples the server's VmRSS / VmHWM (/proc/<pid>/status), its open fds
// (/proc/<pid>/fd) and its descendant processes (the sandboxes: keeper, bwrap, init, reporter,
// program). At the end it deletes every session and checks that the fds and the sandbox process
// count return to their baseline.
//
// It also times each start (request → headers, first event, first stdout line), probes the
// server with GET /healthz every 250 ms, and splits the CPU between server, sandboxes, client and
// the rest of the machine (other load on a 2-core box shows up there).
//
// Bounded: past LOAD_DEADLINE seconds (120) everything is aborted and the exit status is 2.
// The server is stopped and its data dir removed on every exit path (errors, Ctrl-C, deadline);
// if it died by itself, a second server is started on its data dir first, which sweeps what a
// crash leaves (sandboxes still running, their cgroups, mounted workspaces).
// Exit status: 0 when every session exited 0 with all its lines and the server returned to its
// baseline, 1 otherwise, 2 on the deadline, 130 on a signal.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { decodeSSEStream, parseExecutionEvent } from '../packages/protocol/dist/index.js';
import { calibrateClock, intEnv, recordFigure, wallNow } from './common.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'packages/cli/dist/bin.js');

/** Sizes, overridable: LOAD_SESSIONS, LOAD_SECONDS, LOAD_INTERVAL_MS, LOAD_DEADLINE (s), LOAD_SLOW_EVERY, LOAD_START_CONCURRENCY. */
const SESSIONS = intEnv('LOAD_SESSIONS', 200);
const RUN_SECONDS = intEnv('LOAD_SECONDS', 10);
const INTERVAL_MS = intEnv('LOAD_INTERVAL_MS', 100);
const DEADLINE_S = intEnv('LOAD_DEADLINE', 120);
/** Every LOAD_SLOW_EVERY-th stream is read by a slow reader: it stops reading for SLOW_PAUSE_MS every SLOW_PERIOD_MS. */
const SLOW_EVERY = intEnv('LOAD_SLOW_EVERY', 10);
/**
 * Starts in flight at once (0 = all at once): a start holds its slot until its program's first
 * line arrives, so on a small machine the sandboxes' start-up does not starve the ones running.
 * With LOAD_SECONDS longer than the ramp, every stream is live at the same time.
 */
const START_CONCURRENCY = Number(process.env.LOAD_START_CONCURRENCY ?? 0);
const SLOW_PAUSE_MS = 2000;
const SLOW_PERIOD_MS = 3000;
const LINES = Math.max(1, Math.round((RUN_SECONDS * 1000) / INTERVAL_MS));
const SAMPLE_MS = 250;
const LOOP_RES_MS = 10;
/** Seconds a run may take before the server times it out (well above RUN_SECONDS). */
const RUN_TIMEOUT_S = RUN_SECONDS + 50;
/** How long to wait, after the deletes, for fds and sandbox processes to come back to baseline. */
const SETTLE_MS = 10_000;
/** Concurrent DELETEs at the end. */
const DELETE_CONCURRENCY = 16;

// Admission caps raised so every run is admitted (the defaults are 8 running, 128 sessions).
const CAP = Math.max(256, SESSIONS + 16);
const SERVER_ENV = {
  SLUICE_LOG_LEVEL: 'warn',
  SLUICE_MAX_RUNNING: String(CAP),
  SLUICE_MAX_RUNNING_PER_TENANT: String(CAP),
  SLUICE_MAX_SESSIONS: String(CAP),
  SLUICE_MAX_SESSIONS_PER_TENANT: String(CAP),
  SLUICE_MAX_CONNECTIONS: String(Math.max(1024, 2 * SESSIONS + 64)),
  // A stopping server (deadline, Ctrl-C) should not wait 30 s for the runs.
  SLUICE_DRAIN_GRACE: '2',
  SLUICE_KILL_GRACE_MS: '500',
  // Python only: no compiler-cache warming for TypeScript and Java competing for the 2 cores.
  SLUICE_WARM_RUNTIMES: 'false',
};

/** Prints `<i> <time.time_ns()>` `lines` times, one every INTERVAL_MS (no drift). */
const program = (lines) => [
  'import sys, time',
  `n, iv = ${lines}, ${INTERVAL_MS / 1000}`,
  't0 = time.monotonic()',
  'for i in range(n):',
  '    sys.stdout.write(f"{i} {time.time_ns()}\\n")',
  '    sys.stdout.flush()',
  '    d = t0 + (i + 1) * iv - time.monotonic()',
  '    if d > 0:',
  '        time.sleep(d)',
].join('\n');
const PROGRAM = program(LINES);


const log = (msg) => process.stderr.write(`… ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// HTTP clients. Node's fetch is undici; its Agent class is not exported by Node, but the global
// dispatcher is one, so its constructor gives dedicated pools we can close (an idle keep-alive
// connection is an open fd on the server, which would spoil the fd baseline).
// ---------------------------------------------------------------------------------------------
let AgentClass = null;
async function loadAgentClass() {
  await fetch('data:,x'); // loads undici and installs the global dispatcher, no network
  const d = globalThis[Symbol.for('undici.globalDispatcher.1')];
  if (d && typeof d.constructor === 'function' && typeof d.close === 'function') AgentClass = d.constructor;
}
const agents = new Set();
function newAgent(connections) {
  if (!AgentClass) return undefined;
  const a = new AgentClass({ connections, pipelining: 1, keepAliveTimeout: 2_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
  agents.add(a);
  return a;
}
async function closeAgent(a) {
  if (!a) return;
  agents.delete(a);
  await a.close().catch(() => a.destroy().catch(() => {}));
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------
let server = null;
/** A second server started on a crashed one's data dir to sweep it (see stopServer). */
let sweeping = null;

/** Spawns `sluice serve` on dataDir; resolves with its URL once it listens. */
async function spawnServer(dataDir) {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...SERVER_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = { proc, dataDir, url: '', logs: '', exit: null, stopping: false };
  const keep = (t) => {
    s.logs += t;
    if (s.logs.length > 256 * 1024) s.logs = s.logs.slice(-128 * 1024);
  };
  proc.once('exit', (code, signal) => (s.exit = { code, signal }));
  proc.stdout.setEncoding('utf8').on('data', keep);
  proc.stderr.setEncoding('utf8').on('data', keep);
  s.started = new Promise((resolveURL, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${s.logs}`)), 20_000);
    proc.stderr.on('data', () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(s.logs);
      if (m && !s.url) {
        clearTimeout(timer);
        s.url = m[1];
        resolveURL(s.url);
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code ?? signal}:\n${s.logs}`));
    });
  });
  s.started.catch(() => {});
  return s;
}

async function startServer() {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-load-'));
  server = await spawnServer(dataDir);
  await server.started;
  return server;
}

/** How a server process ended, for messages. */
const exitText = (e) => (e ? (e.signal ? `signal ${e.signal}` : `status ${e.code}`) : 'still running');

/** Mount points at or below dir (the server's tmpfs workspaces), deepest first. */
function mountsUnder(dir) {
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const unescape = (p) => p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((l) => unescape(l.split(' ')[1] ?? ''))
    .filter((t) => t === dir || t.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Synchronous last-resort removal of a data dir: lazy-unmount what the server left, then rm. */
function removeDataDirSync(dir) {
  for (const t of mountsUnder(dir)) spawnSync('/usr/bin/umount', ['-l', t], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

/** SIGTERM (drain), SIGKILL after 15 s; resolves once the process is gone. */
async function terminate(s) {
  const { proc } = s;
  if (s.exit || proc.exitCode !== null || proc.signalCode !== null) return;
  s.stopping = true;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM'); // drain: SLUICE_DRAIN_GRACE (2 s) then cancel, then exit
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function stopServer() {
  const s = server;
  if (!s) return;
  const diedByItself = s.exit !== null && !s.stopping;
  await terminate(s);
  if (diedByItself) {
    // A crashed server leaves sandboxes (bwrap's --die-with-parent is racy), their cgroups and the
    // tmpfs workspaces behind. A new server on the same data dir sweeps exactly those at start.
    log(`the server had died (${exitText(s.exit)}): restarting it on its data dir to sweep what it left`);
    const sweeper = (sweeping = await spawnServer(s.dataDir));
    await sweeper.started.catch((e) => log(`sweeping server failed: ${e.message.split('\n')[0]}`));
    await terminate(sweeper);
    sweeping = null;
  }
  // A drained server unmounts its workspaces; a killed one leaves them mounted.
  removeDataDirSync(s.dataDir);
  server = null;
}

// ---------------------------------------------------------------------------------------------
// /proc sampling. Synchronous reads (a scan of ~1000 /proc/<pid>/stat files costs far less CPU
// than as many async reads); during the load they run in a worker thread, off the event loop
// that timestamps the SSE events.
// ---------------------------------------------------------------------------------------------
function serverMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024, threads };
}

const serverFDs = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** The server's descendant processes (every sandbox's keeper, bwrap, init, reporter, program). */
function serverDescendants(pid) {
  const children = new Map();
  const info = new Map();
  for (const n of readdirSync('/proc')) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let st;
    try {
      st = readFileSync(`/proc/${n}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const close = st.lastIndexOf(')');
    const comm = st.slice(st.indexOf('(') + 1, close);
    const rest = st.slice(close + 2);
    const sp = rest.indexOf(' ');
    const state = rest.slice(0, sp);
    const ppid = Number(rest.slice(sp + 1, rest.indexOf(' ', sp + 1)));
    const p = Number(n);
    info.set(p, { comm, state });
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(p);
  }
  let total = 0;
  let programs = 0;
  let zombies = 0;
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop();
    total++;
    const i = info.get(p);
    if (i?.comm.startsWith('python')) programs++;
    if (i?.state === 'Z') zombies++;
    for (const ch of children.get(p) ?? []) stack.push(ch);
  }
  return { total, programs, zombies };
}

/**
 * CPU seconds (user + system) of a process and of its reaped children, from /proc/<pid>/stat.
 * Every sandbox process is waited for up the chain (keeper → server), so once the sandboxes are
 * gone `children` holds all their CPU.
 */
function processCPU(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { self: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS, children: (Number(f[13]) + Number(f[14])) / CLOCK_TICKS };
}
const CLOCK_TICKS = 100;

/** Machine-wide CPU jiffies from /proc/stat: busy (not idle, iowait or steal), steal, total. */
function machineCPU() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4] - f[7], steal: f[7], total };
}

function snapshot(pid) {
  return { ...serverMemory(pid), fds: serverFDs(pid), ...serverDescendants(pid) };
}

/** Worker side: sample every SAMPLE_MS until told to stop. */
function samplerWorker({ pid }) {
  let timer = null;
  const tick = () => {
    const began = performance.now();
    try {
      parentPort.postMessage({ sample: snapshot(pid), cost: performance.now() - began });
    } catch {
      /* the server is gone: the main flow notices */
    }
    timer = setTimeout(tick, Math.max(0, SAMPLE_MS - (performance.now() - began)));
  };
  parentPort.on('message', (m) => {
    if (m === 'stop') {
      clearTimeout(timer);
      parentPort.postMessage({ stopped: true });
      parentPort.close();
    }
  });
  tick();
}

/** Main side: a worker sampling the server; stop() resolves with every sample and its cost. */
function startSampler(pid) {
  const samples = [];
  const costs = [];
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'sampler', pid } });
  let stoppedResolve;
  const stopped = new Promise((r) => (stoppedResolve = r));
  worker.on('message', (m) => {
    if (m.sample) {
      samples.push(m.sample);
      costs.push(m.cost);
    }
    if (m.stopped) stoppedResolve();
  });
  worker.on('error', (e) => {
    log(`sampler failed: ${e?.message ?? e}`);
    stoppedResolve();
  });
  worker.on('exit', () => stoppedResolve());
  return {
    samples,
    costs,
    async stop() {
      worker.postMessage('stop');
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 2_000))]);
      await worker.terminate();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One session's run
// ---------------------------------------------------------------------------------------------
const errors = new Map(); // key → {count, example}
function countError(key, example) {
  const e = errors.get(key) ?? { count: 0, example };
  e.count++;
  errors.set(key, e);
}

/**
 * Runs one session's program and reads its stream. A `slow` reader stops reading for
 * SLOW_PAUSE_MS every SLOW_PERIOD_MS (its socket fills, the server holds the rest in the log);
 * its lines' latencies go to `slowLatencies`. Every seq must arrive exactly once, in order.
 */
async function runSession(id, agent, signal, { latencies, slowLatencies, serverLag, printedAt }, lines = LINES, slow = false, slots = null) {
  const r = { id, slow, t0: 0, headers: NaN, firstEvent: NaN, firstStdout: NaN, doneAt: NaN, lines: 0, badLines: 0, done: null, ok: false };
  let partial = '';
  let expectedLine = 0;
  let slot = slots ? await slots.take() : null;
  const freeSlot = () => {
    slot?.();
    slot = null;
  };
  r.t0 = wallNow();
  let nextPause = slow ? r.t0 + SLOW_PERIOD_MS : Infinity;
  try {
    const res = await fetch(`${server.url}/api/sessions/${encodeURIComponent(id)}/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: lines === LINES ? PROGRAM : program(lines), language: 'python', timeout: RUN_TIMEOUT_S }),
      signal,
      ...(agent ? { dispatcher: agent } : {}),
    });
    r.headers = wallNow() - r.t0;
    if (res.status !== 200 || !res.body) {
      const text = await res.text().catch(() => '');
      let code = '?';
      try {
        code = JSON.parse(text)?.error?.code ?? '?';
      } catch {
        /* not JSON */
      }
      countError(`HTTP ${res.status} ${code}`, text.slice(0, 200));
      return r;
    }
    let expectedSeq = 1;
    for await (const msg of decodeSSEStream(res.body, signal)) {
      const at = wallNow();
      if (Number.isNaN(r.firstEvent)) r.firstEvent = at - r.t0;
      const parsed = parseExecutionEvent(JSON.parse(msg.data));
      if (!parsed.ok) {
        countError('not a contract event', parsed.message);
        continue;
      }
      const ev = parsed.value;
      if (ev.seq < expectedSeq) countError('seq again (duplicate)', `${id}: seq ${ev.seq}, expected ${expectedSeq}`);
      else if (ev.seq > expectedSeq) countError('seq gap', `${id}: seq ${ev.seq}, expected ${expectedSeq}`);
      expectedSeq = Math.max(expectedSeq, ev.seq + 1);
      if (ev.type === 'stdout') {
        if (Number.isNaN(r.firstStdout)) {
          r.firstStdout = at - r.t0;
          freeSlot();
        }
        partial += ev.content;
        let nl;
        while ((nl = partial.indexOf('\n')) !== -1) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          const m = /^(\d+) (\d+)$/.exec(line);
          if (!m || Number(m[1]) !== expectedLine) {
            r.badLines++;
            countError('unexpected line', `${id}: ${JSON.stringify(line.slice(0, 80))} (expected line ${expectedLine})`);
            if (m) expectedLine = Number(m[1]) + 1;
            continue;
          }
          expectedLine++;
          const printed = Number(BigInt(m[2]) / 1000n) / 1000; // ns → ms, µs precision
          if (slow) {
            slowLatencies.push(at - printed);
          } else {
            latencies.push(at - printed);
            printedAt.push(printed);
          }
          serverLag.push(ev.ts - printed); // print → the server's event timestamp (1 ms steps)
          r.lines++;
        }
      } else if (ev.type === 'stderr') {
        countError('stderr output', `${id}: ${ev.content.slice(0, 200)}`);
      } else if (ev.type === 'error') {
        countError(`error event ${ev.code}`, `${id}: ${ev.error}`);
      } else if (ev.type === 'truncated') {
        countError('truncated', `${id}: ${ev.dropped_bytes} bytes of ${ev.stream}`);
      } else if (ev.type === 'done') {
        r.done = ev;
        r.doneAt = at;
      }
      if (wallNow() >= nextPause) {
        await new Promise((resume) => setTimeout(resume, SLOW_PAUSE_MS));
        nextPause = wallNow() + SLOW_PERIOD_MS;
      }
    }
    if (!r.done) countError('stream ended without done', id);
    else if (r.done.reason !== 'exited' || r.done.exit_code !== 0) countError(`done ${r.done.reason} (exit ${r.done.exit_code})`, id);
    else if (r.lines !== lines) countError('lines missing', `${id}: ${r.lines} of ${lines}`);
    else r.ok = true;
  } catch (err) {
    if (signal.aborted) countError('aborted (deadline)', id);
    else countError(`exception ${err?.cause?.code ?? err?.name ?? 'Error'}`, `${id}: ${err?.cause?.message ?? err?.message ?? err}`);
  } finally {
    freeSlot();
  }
  return r;
}

/** At most `n` holders at once; take() resolves with the function that gives the slot back. */
function semaphore(n) {
  let free = n;
  const waiting = [];
  const give = () => {
    const next = waiting.shift();
    if (next) next(once());
    else free++;
  };
  const once = () => {
    let given = false;
    return () => {
      if (!given) {
        given = true;
        give();
      }
    };
  };
  return {
    take: () => (free > 0 ? (free--, Promise.resolve(once())) : new Promise((r) => waiting.push(r))),
  };
}

/** Most streams live at once: between a program's first line and its done. */
function peakLive(results) {
  const marks = [];
  for (const r of results) {
    if (!Number.isFinite(r.firstStdout) || !Number.isFinite(r.doneAt)) continue;
    marks.push([r.t0 + r.firstStdout, 1], [r.doneAt, -1]);
  }
  marks.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let peak = 0;
  for (const [, d] of marks) peak = Math.max(peak, (live += d));
  return peak;
}

/**
 * The server's responsiveness under load: GET /healthz every SAMPLE_MS on one connection of its
 * own; stop() resolves with the response times (ms).
 */
function startProbe(signal) {
  const agent = newAgent(1);
  const times = [];
  let stopped = false;
  let timer = null;
  let wake = null;
  const loop = (async () => {
    while (!stopped && !signal.aborted) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${server.url}/healthz`, { signal, ...(agent ? { dispatcher: agent } : {}) });
        await res.arrayBuffer();
        if (res.status === 200) times.push(performance.now() - t0);
        else countError(`healthz ${res.status}`, '');
      } catch {
        if (!signal.aborted) countError('healthz exception', '');
      }
      await new Promise((r) => {
        wake = r;
        timer = setTimeout(r, Math.max(0, SAMPLE_MS - (performance.now() - t0)));
      });
    }
  })();
  return {
    agent,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await loop;
      return times;
    },
  };
}

/** DELETE each session, at most `limit` at once; returns counts by status. */
async function deleteAll(ids, agent, signal, limit) {
  const statuses = new Map();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      let key;
      try {
        const res = await fetch(`${server.url}/api/sessions/${encodeURIComponent(id)}`, {
          method: 'DELETE',
          signal,
          ...(agent ? { dispatcher: agent } : {}),
        });
        await res.arrayBuffer();
        key = String(res.status);
      } catch (err) {
        if (signal.aborted) throw err;
        key = `exception ${err?.cause?.code ?? err?.name}`;
      }
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, ids.length) }, worker));
  return statuses;
}

// ---------------------------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------------------------
/** Nearest-rank percentile of an already sorted array. */
function pctSorted(s, p) {
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const sortNum = (v) => Float64Array.from(v.filter((x) => Number.isFinite(x))).sort();
const fmtMs = (ms) => (!Number.isFinite(ms) ? 'n/a' : Math.abs(ms) < 1 ? `${(ms * 1000).toFixed(0)} µs` : Math.abs(ms) < 100 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`);
const fmtMiB = (m) => (Number.isFinite(m) ? `${m.toFixed(0)} MiB` : 'n/a');
const fmtN = (n) => (Number.isFinite(n) ? String(n) : 'n/a');

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  │  ');
  const sep = widths.map((w) => '─'.repeat(w)).join('──┼──');
  return [line(header), sep, ...rows.map(line)].join('\n');
}

function distRow(name, values) {
  const s = sortNum(values);
  return [name, `${s.length}`, fmtMs(pctSorted(s, 50)), fmtMs(pctSorted(s, 90)), fmtMs(pctSorted(s, 99)), fmtMs(s.length ? s[s.length - 1] : NaN)];
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
const abort = new AbortController();
let timedOut = false;

async function main() {
  const started = performance.now();
  console.log(
    `Sluice load test — node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB, uid ${process.getuid?.()}`,
  );
  console.log(
    `${SESSIONS} sessions at once, each printing its time every ${INTERVAL_MS} ms for ${RUN_SECONDS} s (${LINES} lines); ` +
      `${START_CONCURRENCY > 0 ? `at most ${START_CONCURRENCY} starting at once; ` : ''}deadline ${DEADLINE_S} s; caps: running ${CAP}, sessions ${CAP}, connections ${SERVER_ENV.SLUICE_MAX_CONNECTIONS}`,
  );
  calibrateClock();
  await loadAgentClass();
  if (!AgentClass) log('undici Agent not reachable: using the global fetch dispatcher (its idle connections stay open)');

  log('starting server');
  await startServer();
  const pid = server.proc.pid;
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  const nofile = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const nproc = /^Max processes\s+(\S+)\s+(\S+)/m.exec(limits);
  console.log(`server pid ${pid}: RLIMIT_NOFILE ${nofile?.[1]}/${nofile?.[2]}, RLIMIT_NPROC ${nproc?.[1]}/${nproc?.[2]}`);
  // Measured: about 8 server fds per running sandbox (its pipes) plus 1 per stream, over ~20 at rest.
  const fdsNeeded = 32 + 9 * SESSIONS;
  if (Number(nofile?.[1]) < fdsNeeded) {
    console.log(`WARNING: the server's RLIMIT_NOFILE soft limit (${nofile?.[1]}) is below the ~${fdsNeeded} fds ${SESSIONS} sandboxes need`);
  }

  // Warm-up: /healthz and one run in a throwaway session (first sandbox, lazy modules), on a
  // pool closed before the baseline is taken.
  log('warming up');
  {
    const warm = newAgent(4);
    const d = warm ? { dispatcher: warm } : {};
    const health = await fetch(`${server.url}/healthz`, { signal: abort.signal, ...d });
    if (health.status !== 200) throw new Error(`healthz answered ${health.status}: ${await health.text()}`);
    await health.arrayBuffer();
    const r = await runSession(`load-warmup-${process.pid}`, warm, abort.signal, { latencies: [], slowLatencies: [], serverLag: [], printedAt: [] }, 2);
    if (!r.ok) throw new Error(`warm-up run failed: ${JSON.stringify([...errors])}`);
    errors.clear();
    await deleteAll([`load-warmup-${process.pid}`], warm, abort.signal, 1);
    await closeAgent(warm);
    await new Promise((r) => setTimeout(r, 500));
  }
  const base = snapshot(pid);
  const baseCPU = processCPU(pid);
  const baseClientCPU = process.cpuUsage();
  const baseMachine = machineCPU();
  log(`baseline: RSS ${fmtMiB(base.rss)}, ${base.fds} fds, ${base.total} sandbox processes`);

  // The load.
  const loadAgent = newAgent(SESSIONS + 8);
  const sampler = startSampler(pid);
  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  loop.enable();
  const lat = { latencies: [], slowLatencies: [], serverLag: [], printedAt: [] };
  const ids = Array.from({ length: SESSIONS }, (_, i) => `load-${process.pid}-${i}`);
  log(`starting ${SESSIONS} streams`);
  const tLoad = performance.now();
  const probe = startProbe(abort.signal);
  const slots = START_CONCURRENCY > 0 ? semaphore(START_CONCURRENCY) : null;
  const results = await Promise.all(ids.map((id, i) => runSession(id, loadAgent, abort.signal, lat, LINES, i % SLOW_EVERY === SLOW_EVERY - 1, slots)));
  const loadSeconds = (performance.now() - tLoad) / 1000;
  const probeTimes = await probe.stop();
  loop.disable();
  if (abort.signal.aborted) {
    const done = results.filter((r) => r.done).length;
    const lines = results.reduce((n, r) => n + r.lines, 0);
    throw new Error(`aborted after ${loadSeconds.toFixed(1)} s of load: ${done} of ${SESSIONS} sessions had their done, ${lines} of ${SESSIONS * LINES} lines arrived`);
  }
  if (server.exit) {
    const done = results.filter((r) => r.done).length;
    throw new Error(
      `the server died during the load (${exitText(server.exit)}) after ${loadSeconds.toFixed(1)} s: ${done} of ${SESSIONS} sessions had their done; ` +
        `errors: ${[...errors].map(([k, v]) => `${k}: ${v.count}`).join('; ')}`,
    );
  }
  const atEnd = snapshot(pid);
  const endCPU = processCPU(pid);
  const serverCPU = endCPU.self - baseCPU.self;
  const sandboxCPU = endCPU.children - baseCPU.children;
  const cu = process.cpuUsage(baseClientCPU);
  const clientCPU = (cu.user + cu.system) / 1e6;
  const endMachine = machineCPU();
  const machineBusy = (endMachine.busy - baseMachine.busy) / CLOCK_TICKS;
  const machineSteal = (endMachine.steal - baseMachine.steal) / CLOCK_TICKS;
  const machineTotal = (endMachine.total - baseMachine.total) / CLOCK_TICKS;
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ', 3).join(' ');

  // Delete everything, drop every client connection, wait for the server to settle.
  log('deleting sessions');
  const ctlAgent = newAgent(DELETE_CONCURRENCY + 2);
  const tDel = performance.now();
  const deletes = await deleteAll(ids, ctlAgent, abort.signal, DELETE_CONCURRENCY);
  const deleteSeconds = (performance.now() - tDel) / 1000;
  const listed = await fetch(`${server.url}/api/sessions`, { signal: abort.signal, ...(ctlAgent ? { dispatcher: ctlAgent } : {}) }).then((r) => r.json());
  const sessionsLeft = Array.isArray(listed?.sessions) ? listed.sessions.length : NaN;
  await closeAgent(ctlAgent);
  await closeAgent(loadAgent);
  await closeAgent(probe.agent);
  const tSettle = performance.now();
  let after = snapshot(pid);
  while ((after.fds > base.fds || after.total > base.total) && performance.now() - tSettle < SETTLE_MS) {
    await new Promise((r) => setTimeout(r, 100));
    after = snapshot(pid);
  }
  const settleMs = performance.now() - tSettle;
  await sampler.stop();
  const all = [...sampler.samples, atEnd, after];
  const peak = (k) => Math.max(...all.map((s) => s[k]));

  // Report.
  const ok = results.filter((r) => r.ok).length;
  const exited = results.filter((r) => r.done?.reason === 'exited').length;
  const reasons = new Map();
  for (const r of results) if (r.done) reasons.set(r.done.reason, (reasons.get(r.done.reason) ?? 0) + 1);
  const totalLines = results.reduce((n, r) => n + r.lines, 0);
  // The start storm ends when the last program's first line arrives.
  const rampEnd = Math.max(...results.map((r) => r.t0 + r.firstStdout).filter(Number.isFinite));

  console.log('');
  console.log(
    table(
      ['outcome', 'value'],
      [
        ['sessions started', String(SESSIONS)],
        ['done, reason exited (exit 0, all lines)', `${exited} (${ok})`],
        ['done reasons', [...reasons].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'],
        ['lines received / expected', `${totalLines} / ${SESSIONS * LINES}`],
        ['most streams live at once (first line → done)', String(peakLive(results))],
        ['errors', errors.size === 0 ? 'none' : [...errors].map(([k, v]) => `${k}: ${v.count}`).join('; ')],
        ['load phase wall time (starts → last done)', `${loadSeconds.toFixed(2)} s`],
        [
          'machine CPU during load (busy of available core-s)',
          `${machineBusy.toFixed(1)} of ${machineTotal.toFixed(1)} (${((100 * machineBusy) / machineTotal).toFixed(0)}%), steal ${machineSteal.toFixed(1)}`,
        ],
        [
          '  server; its children (sandboxes, mount); this client; other',
          `${serverCPU.toFixed(1)}; ${sandboxCPU.toFixed(1)}; ${clientCPU.toFixed(1)}; ${(machineBusy - serverCPU - sandboxCPU - clientCPU).toFixed(1)} s`,
        ],
        ['load average at the end of load', loadavg],
        ['DELETE × ' + SESSIONS, `${[...deletes].map(([k, v]) => `${k}: ${v}`).join(', ')} in ${deleteSeconds.toFixed(2)} s`],
        ['sessions listed after the deletes', fmtN(sessionsLeft)],
      ],
    ),
  );
  for (const [k, v] of errors) console.log(`  e.g. ${k}: ${v.example}`);

  console.log('');
  console.log(
    table(
      ['latency', 'n', 'p50', 'p90', 'p99', 'max'],
      [
        distRow('event latency (arrival − printed time), readers keeping up', lat.latencies),
        distRow(`  slow readers (every ${SLOW_EVERY}th stream: ${SLOW_PAUSE_MS / 1000} s pauses)`, lat.slowLatencies),
        distRow('  print → server event ts (1 ms steps)', lat.serverLag),
        distRow('  lines printed during the start storm', lat.latencies.filter((_, i) => lat.printedAt[i] < rampEnd)),
        distRow('  lines printed once every program ran', lat.latencies.filter((_, i) => lat.printedAt[i] >= rampEnd)),
        distRow('request → response headers', results.map((r) => r.headers)),
        distRow('request → first event (start)', results.map((r) => r.firstEvent)),
        distRow('request → first stdout line', results.map((r) => r.firstStdout)),
        distRow('GET /healthz every 250 ms during load', probeTimes),
        // The histogram records whole timer intervals: subtract the 10 ms tick to get the lag.
        [
          'client event-loop lag (10 ms timer)',
          '',
          ...[50, 90, 99].map((p) => fmtMs(Math.max(0, loop.percentile(p) / 1e6 - LOOP_RES_MS))),
          fmtMs(Math.max(0, loop.max / 1e6 - LOOP_RES_MS)),
        ],
      ],
    ),
  );

  console.log('');
  console.log(
    table(
      ['server (/proc)', 'baseline', 'peak', 'end of load', 'after delete'],
      [
        ['VmRSS', fmtMiB(base.rss), fmtMiB(peak('rss')), fmtMiB(atEnd.rss), fmtMiB(after.rss)],
        ['VmHWM', fmtMiB(base.hwm), fmtMiB(peak('hwm')), fmtMiB(atEnd.hwm), fmtMiB(after.hwm)],
        ['open fds', fmtN(base.fds), fmtN(peak('fds')), fmtN(atEnd.fds), fmtN(after.fds)],
        ['sandbox processes (descendants)', fmtN(base.total), fmtN(peak('total')), fmtN(atEnd.total), fmtN(after.total)],
        ['  of which programs (python)', fmtN(base.programs), fmtN(peak('programs')), fmtN(atEnd.programs), fmtN(after.programs)],
        ['  of which zombies', fmtN(base.zombies), fmtN(peak('zombies')), fmtN(atEnd.zombies), fmtN(after.zombies)],
        ['threads', fmtN(base.threads), fmtN(peak('threads')), fmtN(atEnd.threads), fmtN(after.threads)],
      ],
    ),
  );
  const costs = sortNum(sampler.costs);
  console.log(
    `samples: ${sampler.samples.length} every ${SAMPLE_MS} ms in a worker thread (each took p50 ${fmtMs(pctSorted(costs, 50))}, max ${fmtMs(costs[costs.length - 1])})`,
  );
  const fdsBack = after.fds <= base.fds;
  const procsBack = after.total <= base.total;
  console.log(
    `after the deletes: fds ${fdsBack ? 'back to' : 'NOT back to'} baseline (${after.fds} vs ${base.fds}), ` +
      `sandbox processes ${procsBack ? 'back to' : 'NOT back to'} baseline (${after.total} vs ${base.total}), ` +
      `checked for ${(settleMs / 1000).toFixed(1)} s; total wall time ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const once = ![...errors.keys()].some((k) => k.startsWith('seq ') || k === 'unexpected line' || k === 'lines missing');
  recordFigure('concurrency', {
    streams: SESSIONS,
    live: peakLive(results),
    ok,
    slow: results.filter((r) => r.slow).length,
    once,
    p99: pctSorted(sortNum(lat.latencies), 99),
    rssPeak: peak('rss'),
    rssBase: base.rss,
  });
  return ok === SESSIONS && errors.size === 0 && fdsBack && procsBack && sessionsLeft === 0;
}

async function cleanup() {
  for (const a of [...agents]) {
    agents.delete(a);
    await a.destroy().catch(() => {});
  }
  await stopServer();
}

let stopping = false;
async function finish(code) {
  if (stopping) return;
  stopping = true;
  await cleanup().catch((e) => process.stderr.write(`cleanup failed: ${e?.stack ?? e}\n`));
  process.exit(code);
}

/** Last resort, synchronous (an 'exit' listener cannot wait): kill the server, remove its dir. */
function killServerSync() {
  sweeping?.proc.kill('SIGKILL');
  const s = server;
  if (!s) return;
  server = null;
  try {
    s.proc.kill('SIGKILL');
  } catch {
    /* already gone */
  }
  try {
    removeDataDirSync(s.dataDir);
  } catch {
    /* best effort */
  }
}

async function entry() {
  // Every exit path stops the server: normal end, failure, deadline, signals, and process exit.
  process.on('exit', killServerSync);

  const deadline = setTimeout(() => {
    timedOut = true;
    process.stderr.write(`\nDEADLINE: ${DEADLINE_S} s passed; aborting every request and stopping the server\n`);
    abort.abort(new Error('deadline'));
    // Give the main flow time to unwind and stop the server; past that, force the end.
    setTimeout(() => {
      process.stderr.write('forcing exit after the deadline\n');
      process.exit(2); // the 'exit' listener kills the server and removes its data dir
    }, 30_000).unref();
  }, DEADLINE_S * 1000);

  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (stopping) process.exit(130);
      process.stderr.write(`\n${sig}: stopping the server…\n`);
      abort.abort(new Error(sig));
      finish(130);
    });
  }

  try {
    const passed = await main();
    clearTimeout(deadline);
    await finish(timedOut ? 2 : passed ? 0 : 1);
  } catch (err) {
    clearTimeout(deadline);
    process.stderr.write(`load test failed${timedOut ? ' (deadline)' : ''}: ${err?.stack ?? err}\n`);
    if (server?.logs) process.stderr.write(`server log (tail):\n${server.logs.slice(-8000)}\n`);
    await finish(timedOut ? 2 : 1);
  }
}

if (isMainThread) await entry();
else if (workerData?.role === 'sampler') samplerWorker(workerData);
