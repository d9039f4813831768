// Shared by the benchmarks: size knobs from the environment, a wall clock with sub-millisecond
// resolution comparable with Python's time.time_ns(), percentiles and tables, and a real server.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSSEStream } from '../packages/protocol/dist/index.js';

/** A positive integer from the environment, or `fallback` when unset. */
export function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

// Both this and time.time_ns() read CLOCK_REALTIME, but Date.now() has 1 ms steps, too coarse
// for a pipe: anchor performance.now() (monotonic, µs) at the instant Date.now() ticks.
let wallOffset = 0;

/** Anchors wallNow(); call once before measuring (median of 5 tick observations). */
export function calibrateClock() {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    const d0 = Date.now();
    let d1 = d0;
    let p = 0;
    while (d1 === d0) {
      p = performance.now();
      d1 = Date.now();
    }
    samples.push(d1 - p);
  }
  samples.sort((a, b) => a - b);
  wallOffset = samples[2];
}

/** Wall-clock milliseconds since the epoch, with µs resolution. */
export const wallNow = () => performance.now() + wallOffset;

/** A performance.now() reading taken earlier, as wall-clock milliseconds. */
export const toWall = (perfMs) => perfMs + wallOffset;

/** Nearest-rank percentile. */
export function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export const median = (v) => pct(v, 50);

/** A duration for a table cell: µs below 1 ms, two decimals below 100 ms. */
export const fmtMs = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 100 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`);
export const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(r < 10 ? 2 : 1)}×` : 'n/a');

/** A text table: the first column left-aligned, the others right-aligned. */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  │  ');
  const sep = widths.map((w) => '─'.repeat(w)).join('──┼──');
  return [line(header), sep, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// A real server for a benchmark: the CLI's `serve` on a free loopback port with its own data dir
// ---------------------------------------------------------------------------------------------

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(ROOT, 'packages/cli/dist/bin.js');

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(proc, graceMs = 10_000) {
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  return proc.exitCode ?? proc.signalCode;
}

/**
 * Starts `sluice serve` with `env` added to a minimal environment (warn-level logs) and waits for
 * its `listening on` line and a 200 from /healthz. The result's `stop()` stops it and removes its
 * data dir; it is idempotent, so every exit path (errors, Ctrl-C) may call it.
 * `onSpawn(proc)` sees the process first (a bench that tracks its children).
 */
export async function startServer({ tag = 'bench', env = {}, readyMs = 60_000, onSpawn } = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), `sluice-${tag}-`));
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir], {
    // No compiler-cache warming for TypeScript and Java at start (SLUICE_WARM_RUNTIMES): the
    // benches run Python and JavaScript, and javac's ~10 s of CPU on one of the 2 cores would
    // land in the first figures (a bare spawn measured 39 ms instead of 29 ms beside it).
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SLUICE_LOG_LEVEL: 'warn', SLUICE_WARM_RUNTIMES: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onSpawn?.(proc);
  let logs = '';
  let stopping = null;
  const s = {
    proc,
    dataDir,
    url: '',
    get logs() {
      return logs;
    },
    stop: () =>
      (stopping ??= (async () => {
        const status = await stopProcess(proc);
        try {
          await rm(dataDir, { recursive: true, force: true });
        } catch (err) {
          // Something of the server outlived it (a mount): a server defect, told with its logs.
          throw new Error(`could not remove the server's data dir after it exited (${status}): ${err.message}\n${logs}`);
        }
      })()),
  };
  proc.stdout.setEncoding('utf8').on('data', (t) => (logs += t));
  try {
    s.url = await new Promise((resolveURL, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in ${readyMs / 1000} s:\n${logs}`)), readyMs);
      proc.stderr.setEncoding('utf8').on('data', (t) => {
        logs += t;
        const m = /listening on (http:\/\/[^\s]+)/.exec(logs);
        if (m) {
          clearTimeout(timer);
          resolveURL(m[1]);
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code ?? signal}:\n${logs}`));
      });
    });
    const health = await fetch(`${s.url}/healthz`);
    if (health.status !== 200) throw new Error(`healthz answered ${health.status}: ${await health.text()}`);
  } catch (err) {
    await s.stop();
    throw err;
  }
  return s;
}

/**
 * Runs a command to its end; resolves with its exit code (-1 when it could not start) and its
 * output (stdout and stderr). `onSpawn` sees the process (a bench that stops its children on exit).
 */
export function runCommand(cmd, args, env = process.env, onSpawn) {
  return new Promise((resolveRun) => {
    const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(proc);
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (t) => (out += t));
    proc.stderr.setEncoding('utf8').on('data', (t) => (out += t));
    proc.once('error', (err) => resolveRun({ code: -1, out: `${out}${err.message}` }));
    proc.once('close', (code, sig) => resolveRun({ code: code ?? (sig ? -1 : 0), out }));
  });
}

/**
 * Makes sure Debian's `packages` are installed: `present()` (true when what the bench needs
 * works) first, else `apt-get install` as root (`apt-get update` and again if that fails), then
 * `present()` once more. Throws with what to install when that is not possible. A fresh machine
 * has none of the peers and tools the benches start, and CI installs only what the tests need.
 */
export async function ensureDebianPackages(packages, present, log = (msg) => process.stderr.write(`… ${msg}\n`)) {
  if (await present()) return;
  const what = packages.join(' ');
  if (process.getuid?.() !== 0) throw new Error(`missing, and this is not root to install it: apt-get install ${what}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...packages], env);
  log(`installing ${packages.join(', ')} with apt-get`);
  let r = await install();
  if (r.code !== 0) {
    log('apt-get install failed; apt-get update, then again');
    await runCommand('apt-get', ['update'], env);
    r = await install();
  }
  if (r.code !== 0 || !(await present())) throw new Error(`apt-get install ${what} failed (${r.code}):\n${r.out.slice(-4000)}`);
}

/** True when `cmd args` runs and exits 0. */
export async function commandWorks(cmd, args) {
  return (await runCommand(cmd, args)).code === 0;
}

// ---------------------------------------------------------------------------------------------
// The scoreboard: each bench records its headline figures; run.mjs prints them against the targets
// ---------------------------------------------------------------------------------------------

/**
 * Records one headline figure (a plain object of numbers) under `key` for the scoreboard that
 * `bench/run.mjs` prints at the end; it passes BENCH_SUMMARY_FILE to every bench it runs. A bench
 * run alone (no such file) records nothing.
 */
export function recordFigure(key, figure) {
  const file = process.env.BENCH_SUMMARY_FILE;
  if (file) appendFileSync(file, `${JSON.stringify({ key, ...figure })}\n`);
}

/**
 * New sessions are measured one at a time on a server at rest: this long apart, so that the
 * server's pool of pre-started sandboxes and kernels (SLUICE_POOL_SIZE) has refilled (in the
 * background, one shell at a time, from 250 ms after a take). Sessions arriving faster than it
 * refills take the path without the pool; docs/performance.md says what that costs.
 */
export const NEW_SESSION_SPACING_MS = 1000;
export const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** One keep-alive connection for postStreamHTTP, reused from request to request. */
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * POSTs `body` as JSON with node:http instead of fetch and resolves with the answer (a byte
 * stream contractEvents reads), or rejects unless it is a 200. On 2 cores the client competes
 * with the server for CPU: undici's fetch spends ~1.8 ms of it per SSE request here, node:http
 * ~0.7 ms, so a figure read this way is closer to what the server itself adds.
 */
export function postStreamHTTP(url, body) {
  return new Promise((resolveAnswer, reject) => {
    const req = http.request(url, { method: 'POST', agent: httpAgent, headers: { 'content-type': 'application/json' } }, (res) => {
      if (res.statusCode === 200) return resolveAnswer(res);
      res.resume();
      reject(new Error(`stream answered ${res.statusCode}`));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * The contract events of an SSE response body, each with its arrival time (performance.now()):
 * parsed with `parse` (protocol's parseExecutionEvent or parseAgentEvent), seqs checked to run
 * 1, 2, 3… with no gap or repeat, and an `error` event thrown. Every bench reads streams this way.
 */
export async function* contractEvents(body, parse, signal) {
  let expected = 1;
  for await (const msg of decodeSSEStream(body, signal)) {
    const at = performance.now();
    const parsed = parse(JSON.parse(msg.data));
    if (!parsed.ok) throw new Error(`not a contract event: ${parsed.message}`);
    const ev = parsed.value;
    if (ev.seq !== expected++) throw new Error(`seq ${ev.seq}, expected ${expected - 1}`);
    if (ev.type === 'error') throw new Error(`error event: ${ev.code}: ${ev.error}`);
    yield { ev, at };
  }
}
