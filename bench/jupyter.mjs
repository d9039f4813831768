#!/usr/bin/env node
// Sluice beside Jupyter Server: `node bench/jupyter.mjs` after a build (`npm run bench` runs it
// last). The peer for the kernel rows of issue 13, measured in the same run as Sluice:
//
//   Jupyter Server (Debian's python3-jupyter-server and python3-ipykernel, apt-get installed when
//   missing), on 127.0.0.1, a free port and a token, its kernels started over the REST API and
//   driven over the kernel WebSocket (`/api/kernels/{id}/channels`, the Jupyter messaging
//   protocol: execute_request on shell; execute_reply, iopub status and stream back):
//     1. kernel start (POST /api/kernels) → the first execute_reply;
//     2. warm `1 + 1`: execute_request sent → iopub idle, with TCP_NODELAY on the client socket
//        and without (Nagle against the server's delayed ACKs);
//     3. warm `print(1)`: execute_request sent → first iopub stdout stream message;
//     4. a cell printing BENCH_JUPYTER_MIB MiB of 64-byte lines: execute_request → idle, MB/s.
//   Sluice (a real server, bubblewrap sandboxes), the same figures:
//     warm kernel `1 + 1` → `done` over one WebSocket (`/api/sessions/{id}/ws`) and over SSE on
//     a keep-alive connection (read with fetch, and with node:http); `print(1)` → first stdout;
//     the same big cell; kernel cold start (the first cell of a new session, request → done); a
//     new session's process-mode `print(1)` request → first stdout, beside a bare
//     `python3 -c 'print(1)'` spawn → first byte.
//
// Jupyter's IOPub rate limits are off (the defaults, 1 MB/s and 1000 msg/s, drop output). Jupyter
// runs in a process group of its own, which is killed (kernels included), like the Sluice server,
// on every exit path: errors, Ctrl-C, SIGTERM.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { parseExecutionEvent } from '../packages/protocol/dist/index.js';
import { NEW_SESSION_SPACING_MS, contractEvents, ensureDebianPackages, runCommand as runCommandOf, fmtMs, fmtRatio, intEnv, median, pause, pct, postStreamHTTP, recordFigure, startServer, table } from './common.mjs';

// Debian's interpreter, the one its jupyter packages are installed for (PATH may hold another).
const PYTHON = '/usr/bin/python3';
const APT_PACKAGES = ['python3-jupyter-server', 'python3-ipykernel'];

/** Sizes: BENCH_JUPYTER_COLD_RUNS, _RUNS, _WARMUP, _STEADY_WARMUP, _STDOUT_RUNS, _FB_RUNS, _MIB. */
const COLD_RUNS = intEnv('BENCH_JUPYTER_COLD_RUNS', 5);
const WARM_RUNS = intEnv('BENCH_JUPYTER_RUNS', 200);
const STDOUT_RUNS = intEnv('BENCH_JUPYTER_STDOUT_RUNS', 50);
const FIRST_BYTE_RUNS = intEnv('BENCH_JUPYTER_FB_RUNS', 20);
const THROUGHPUT_MIB = intEnv('BENCH_JUPYTER_MIB', 64);
/**
 * Cells run on each warm socket before the measured ones. "Warm" is a server's steady state, and
 * a server in service has run its hot path many times: V8 compiles Sluice's over its first
 * couple of thousand cells (one WebSocket, batches of 200 on a fresh server: median 1.67 ms, then
 * 1.05, 0.81, 0.66 … 0.44 ms by the 15th batch; the server's CPU per cell 2.1 → 0.35 ms), so its
 * warm rows come after STEADY_WARMUP cells, and the same cells after only WARMUP are printed too
 * ("young server"). Python has no JIT: Jupyter's tuned socket, the baseline of the ratios, gets
 * the same STEADY_WARMUP; its two other sockets (~45 ms a cell with Nagle) WARMUP.
 */
const WARMUP = intEnv('BENCH_JUPYTER_WARMUP', 300);
const STEADY_WARMUP = intEnv('BENCH_JUPYTER_STEADY_WARMUP', 3000);
const OUTPUT_LIMIT = 256 * 1024 * 1024;
/** No single step (a start, a cell) may take longer than this: a hang fails the bench. */
const STEP_DEADLINE_MS = 180_000;

// 64 KiB blocks of 64-byte lines through sys.stdout (a kernel's stdout has no .buffer).
const THROUGHPUT_CODE = [
  'import sys',
  's = ("x" * 63 + "\\n") * 1024',
  'w = sys.stdout.write',
  `for _ in range(${THROUGHPUT_MIB * 16}):`,
  '    w(s)',
  'sys.stdout.flush()',
].join('\n');
const THROUGHPUT_BYTES = THROUGHPUT_MIB * 16 * 65536;

const log = (msg) => process.stderr.write(`… ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Processes: every child is tracked so any exit path can stop it
// ---------------------------------------------------------------------------------------------

/** Live children: proc → whether it leads a process group (then the whole group is signalled). */
const children = new Map();

function track(proc, group) {
  children.set(proc, group);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

function signal(proc, group, sig) {
  try {
    if (group) process.kill(-proc.pid, sig);
    else proc.kill(sig);
  } catch {
    // already gone
  }
}

/** SIGTERM, SIGKILL after 10 s; for a group leader the group gets SIGKILL too (orphaned kernels). */
async function stopProc(proc, group) {
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    signal(proc, group, 'SIGTERM');
    const timer = setTimeout(() => signal(proc, group, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (group) signal(proc, group, 'SIGKILL');
}

/** common.mjs's runCommand, its process tracked (stopped on every exit path). */
const runCommand = (cmd, args, env = process.env) => runCommandOf(cmd, args, env, (proc) => track(proc, false));

/** Rejects after `ms` unless `promise` settles first. */
function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Polls `check` (truthy = done) every 50 ms until it holds, or throws at the deadline. */
async function pollUntil(check, ms, what) {
  const end = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (performance.now() > end) throw new Error(`${what}: not ready in ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A loopback port free right now (Jupyter Server 1.x cannot report a port 0 it picked). */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Jupyter Server
// ---------------------------------------------------------------------------------------------

/** jupyter_server and ipykernel versions, or null when either does not import. */
async function jupyterVersions() {
  const r = await runCommand(PYTHON, ['-c', 'import jupyter_server, ipykernel; print(jupyter_server.__version__, ipykernel.__version__)']);
  if (r.code !== 0) return null;
  const [server, kernel] = r.out.trim().split(' ');
  return { server, kernel };
}

/** Installs Debian's packages when they are missing (common.mjs); their versions. */
async function ensureJupyter() {
  let versions = null;
  await ensureDebianPackages(APT_PACKAGES, async () => (versions = await jupyterVersions()) !== null, log);
  return versions;
}

// Tornado leaves Nagle on for the server's side of the kernel WebSocket, whatever the client
// sets; this opt-in (`?bench_nodelay=1` on the channels URL) measures Jupyter tuned as well.
const SERVER_NODELAY_CONFIG = `
from jupyter_server.services.kernels.handlers import ZMQChannelsHandler
_open = ZMQChannelsHandler.open
def open(self, *args, **kwargs):
    if self.get_argument("bench_nodelay", None) == "1":
        self.set_nodelay(True)
    return _open(self, *args, **kwargs)
ZMQChannelsHandler.open = open
`;

let jupyter = null;

async function startJupyter() {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-jupyter-'));
  const root = join(dir, 'root');
  await mkdir(root);
  await mkdir(join(dir, 'config'));
  await writeFile(join(dir, 'config', 'jupyter_server_config.py'), SERVER_NODELAY_CONFIG);
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    // Config, data, runtime (connection files) and IPython profiles in the throwaway dir.
    JUPYTER_CONFIG_DIR: join(dir, 'config'),
    JUPYTER_DATA_DIR: join(dir, 'data'),
    JUPYTER_RUNTIME_DIR: join(dir, 'runtime'),
    IPYTHONDIR: join(dir, 'ipython'),
    JUPYTER_PLATFORM_DIRS: '1',
  };
  const args = [
    '-m', 'jupyter_server',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.token=${token}`,
    '--ServerApp.open_browser=False',
    '--ServerApp.allow_root=True',
    `--ServerApp.root_dir=${root}`,
    '--ServerApp.iopub_data_rate_limit=0',
    '--ServerApp.iopub_msg_rate_limit=0',
    '--ServerApp.log_level=WARN',
  ];
  // A group of its own: stopping it reaches the kernels too, even if the server hangs.
  const proc = track(spawn(PYTHON, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), true);
  const j = { proc, dir, base: `http://127.0.0.1:${port}`, token, logs: '' };
  jupyter = j;
  proc.stdout.setEncoding('utf8').on('data', (t) => (j.logs += t));
  proc.stderr.setEncoding('utf8').on('data', (t) => (j.logs += t));
  await pollUntil(
    async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`Jupyter Server exited:\n${j.logs}`);
      const res = await jupyterFetch('/api/status').catch(() => null);
      if (!res) return false;
      await res.arrayBuffer();
      return res.status === 200;
    },
    60_000,
    'Jupyter Server',
  );
  return j;
}

function jupyterFetch(path, init = {}) {
  return fetch(`${jupyter.base}${path}`, {
    ...init,
    headers: { authorization: `token ${jupyter.token}`, 'content-type': 'application/json', ...init.headers },
  });
}

async function startKernel() {
  const res = await jupyterFetch('/api/kernels', { method: 'POST', body: JSON.stringify({ name: 'python3' }) });
  if (res.status !== 201) throw new Error(`POST /api/kernels answered ${res.status}: ${await res.text()}`);
  return (await res.json()).id;
}

async function deleteKernel(id) {
  const res = await jupyterFetch(`/api/kernels/${id}`, { method: 'DELETE' });
  await res.arrayBuffer();
}

/** A client of one kernel's channels WebSocket; messages are matched to requests by parent msg_id. */
class JupyterKernelSocket {
  /** noDelay: TCP_NODELAY on the client's socket; serverNoDelay: on the server's too. */
  static async open(kernelId, noDelay, serverNoDelay = false) {
    const session = randomUUID();
    const url = `${jupyter.base.replace(/^http/, 'ws')}/api/kernels/${kernelId}/channels?session_id=${session}${serverNoDelay ? '&bench_nodelay=1' : ''}`;
    const ws = new WebSocket(url, { headers: { authorization: `token ${jupyter.token}` }, perMessageDeflate: false });
    await withDeadline(
      new Promise((resolveOpen, reject) => {
        ws.once('open', resolveOpen);
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`kernel WebSocket answered ${res.statusCode}`)));
      }),
      STEP_DEADLINE_MS,
      'kernel WebSocket',
    );
    // ws turns TCP_NODELAY on for every socket; "without" turns it back off.
    ws._socket.setNoDelay(noDelay);
    return new JupyterKernelSocket(ws, session);
  }

  constructor(ws, session) {
    this.ws = ws;
    this.session = session;
    this.pending = new Map();
    ws.on('message', (data) => {
      const at = performance.now();
      const msg = JSON.parse(data.toString());
      this.pending.get(msg.parent_header?.msg_id)?.(msg, at);
    });
    ws.on('close', (code) => {
      for (const handler of this.pending.values()) handler({ closed: code }, performance.now());
    });
    ws.on('error', () => {}); // a failure shows as 'close', which fails the pending cell
  }

  /**
   * Runs one cell; resolves once both its execute_reply and its iopub idle have arrived, with
   * times from the send: reply, idle, first stdout, and the stdout bytes received.
   */
  execute(code) {
    const msgId = randomUUID();
    const msg = {
      header: { msg_id: msgId, username: 'bench', session: this.session, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
      parent_header: {},
      metadata: {},
      content: { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      buffers: [],
      channel: 'shell',
    };
    const run = new Promise((resolveRun, reject) => {
      const r = { reply: NaN, idle: NaN, firstStdout: NaN, stdoutBytes: 0, result: null };
      let t0 = 0;
      this.pending.set(msgId, (m, at) => {
        if (m.closed !== undefined) return reject(new Error(`kernel WebSocket closed (${m.closed}) during a cell`));
        if (m.msg_type === 'execute_reply') {
          if (m.content.status !== 'ok') return reject(new Error(`execute_reply: ${JSON.stringify(m.content)}`));
          r.reply = at - t0;
        } else if (m.msg_type === 'stream' && m.content.name === 'stdout') {
          if (Number.isNaN(r.firstStdout)) r.firstStdout = at - t0;
          r.stdoutBytes += Buffer.byteLength(m.content.text);
        } else if (m.msg_type === 'execute_result') {
          r.result = m.content.data['text/plain'];
        } else if (m.msg_type === 'status' && m.content.execution_state === 'idle') {
          r.idle = at - t0;
        }
        if (!Number.isNaN(r.reply) && !Number.isNaN(r.idle)) resolveRun(r);
      });
      t0 = performance.now();
      this.ws.send(JSON.stringify(msg));
    });
    return withDeadline(run, STEP_DEADLINE_MS, 'Jupyter cell').finally(() => this.pending.delete(msgId));
  }

  close() {
    this.ws.terminate();
  }
}

async function stopJupyter() {
  const j = jupyter;
  jupyter = null;
  if (!j) return;
  // Kernels first, over the API (the group kill below catches them if this fails).
  if (j.proc.exitCode === null) {
    const kernels = await withDeadline(
      jupyterFetchFrom(j, '/api/kernels').then((r) => (r.ok ? r.json() : [])),
      10_000,
      'GET /api/kernels',
    ).catch(() => []);
    for (const k of kernels) await withDeadline(jupyterFetchFrom(j, `/api/kernels/${k.id}`, 'DELETE'), 10_000, 'DELETE kernel').catch(() => {});
  }
  await stopProc(j.proc, true);
  // jupyter_client starts each kernel in a session of its own, out of the group's reach: any
  // kernel still alive (the server died first) is found by its connection file in our dir.
  await Promise.all((await processesMentioning(j.dir)).map((pid) => stopPid(pid)));
  await rm(j.dir, { recursive: true, force: true });
}

/** Pids whose command line contains `text` (here: our own temporary directory). */
async function processesMentioning(text) {
  const pids = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

/** SIGTERM a pid we do not parent, SIGKILL if it is still there after 5 s (polled). */
async function stopPid(pid) {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  await pollUntil(() => !alive(), 5_000, `pid ${pid}`).catch(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  });
}

const jupyterFetchFrom = (j, path, method = 'GET') =>
  fetch(`${j.base}${path}`, { method, headers: { authorization: `token ${j.token}` } });

// ---------------------------------------------------------------------------------------------
// Sluice
// ---------------------------------------------------------------------------------------------

let sluice = null;

async function startSluice() {
  sluice = await startServer({
    tag: 'bench-jupyter-peer',
    env: { SLUICE_OUTPUT_LIMIT: String(OUTPUT_LIMIT), SLUICE_MAX_OUTPUT_LIMIT: String(OUTPUT_LIMIT) },
    onSpawn: (proc) => track(proc, false),
  });
  return sluice;
}

async function stopSluice() {
  const s = sluice;
  sluice = null;
  await s?.stop();
}

let sessionCounter = 0;
const newSession = (tag) => `bench-jup-${tag}-${process.pid}-${++sessionCounter}`;

async function createSession(id) {
  const res = await fetch(`${sluice.url}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, language: 'python' }),
  });
  if (res.status !== 201) throw new Error(`POST /api/sessions answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
}

async function deleteSession(id) {
  const res = await fetch(`${sluice.url}/api/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' });
  await res.arrayBuffer();
}

/** Checks one event of a run; throws on anything but output, results and a clean `done`. */
function checkEvent(ev, r, t0, at) {
  switch (ev.type) {
    case 'stdout':
      if (Number.isNaN(r.firstStdout)) r.firstStdout = at - t0;
      r.stdoutBytes += Buffer.byteLength(ev.content);
      break;
    case 'result':
      r.result = ev.data['text/plain'] ?? null;
      break;
    case 'error':
      throw new Error(`error event: ${ev.code}: ${ev.error}`);
    case 'truncated':
      throw new Error(`output truncated: ${ev.dropped_bytes} bytes of ${ev.stream} dropped`);
    case 'done':
      if (ev.reason !== 'exited' || ev.exit_code !== 0) throw new Error(`run ended with ${ev.reason} (exit ${ev.exit_code})`);
      r.done = at - t0;
      break;
    default:
      break; // stderr, progress and the rest: not measured
  }
}

/**
 * One run over SSE (POST /stream, keep-alive): times from the request, as the WS client's. Like
 * every other step it has a deadline (sseStep).
 */
function sseRun(session, body) {
  return sseStep(async () => {
    const r = { done: NaN, firstStdout: NaN, stdoutBytes: 0, result: null };
    const t0 = performance.now();
    const res = await fetch(`${sluice.url}/api/sessions/${encodeURIComponent(session)}/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
    for await (const { ev, at } of contractEvents(res.body, parseExecutionEvent)) checkEvent(ev, r, t0, at);
    if (Number.isNaN(r.done)) throw new Error('stream ended without done');
    return r;
  });
}

/** sseRun with node:http as the client instead of fetch (postStreamHTTP): the same request, decoding and checks. */
function sseRunHTTP(session, body) {
  return sseStep(async () => {
    const r = { done: NaN, firstStdout: NaN, stdoutBytes: 0, result: null };
    const t0 = performance.now();
    const res = await postStreamHTTP(`${sluice.url}/api/sessions/${encodeURIComponent(session)}/stream`, body);
    for await (const { ev, at } of contractEvents(res, parseExecutionEvent)) checkEvent(ev, r, t0, at);
    if (Number.isNaN(r.done)) throw new Error('stream ended without done');
    return r;
  });
}

/**
 * Runs `step` within STEP_DEADLINE_MS: a hung server fails the bench instead of hanging it (the
 * cleanup then stops the server, which ends the request). No AbortSignal on the measured path:
 * its listeners cost the client ~60 µs a run here, which the figure would count.
 */
function sseStep(step) {
  return withDeadline(step(), STEP_DEADLINE_MS, 'Sluice SSE run');
}

/** One session's WebSocket; runs are matched by request_id, then by execution_id. */
class SluiceSocket {
  static async open(session) {
    const ws = new WebSocket(`${sluice.url.replace(/^http/, 'ws')}/api/sessions/${encodeURIComponent(session)}/ws`, { perMessageDeflate: false });
    await withDeadline(
      new Promise((resolveOpen, reject) => {
        ws.once('open', resolveOpen);
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`session WebSocket answered ${res.statusCode}`)));
      }),
      STEP_DEADLINE_MS,
      'session WebSocket',
    );
    return new SluiceSocket(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.byRequest = new Map();
    this.byExecution = new Map();
    this.counter = 0;
    ws.on('message', (data) => {
      const at = performance.now();
      const msg = JSON.parse(data.toString());
      if (msg.type === 'accepted') {
        const h = this.byRequest.get(msg.request_id);
        if (h) this.byExecution.set(msg.execution_id, h);
      } else if (msg.execution_id !== undefined) {
        this.byExecution.get(msg.execution_id)?.(msg, at);
      } else if (msg.request_id !== undefined) {
        this.byRequest.get(msg.request_id)?.(msg, at); // refused before it started
      }
    });
    ws.on('close', (code) => {
      for (const h of this.byRequest.values()) h({ closed: code }, performance.now());
    });
    ws.on('error', () => {}); // shows as 'close'
  }

  /** Runs code; resolves at its `done` with times from the send. */
  execute(code, mode) {
    const requestId = `r${++this.counter}`;
    const run = new Promise((resolveRun, reject) => {
      const r = { done: NaN, firstStdout: NaN, stdoutBytes: 0, result: null };
      let t0 = 0;
      this.byRequest.set(requestId, (m, at) => {
        if (m.closed !== undefined) return reject(new Error(`session WebSocket closed (${m.closed}) during a run`));
        try {
          checkEvent(m, r, t0, at);
        } catch (err) {
          return reject(err);
        }
        if (m.type === 'done') resolveRun(r);
      });
      t0 = performance.now();
      this.ws.send(JSON.stringify({ type: 'execute', request_id: requestId, code, language: 'python', mode }));
    });
    return withDeadline(run, STEP_DEADLINE_MS, 'Sluice run').finally(() => this.byRequest.delete(requestId));
  }

  close() {
    this.ws.terminate();
  }
}

/** spawn → first stdout byte of python3 -c 'print(1)', bare. */
function bareFirstByte() {
  return new Promise((resolveRun, reject) => {
    const t0 = performance.now();
    let first = NaN;
    const child = track(spawn(PYTHON, ['-u', '-c', 'print(1)'], { stdio: ['ignore', 'pipe', 'ignore'] }), false);
    child.stdout.once('data', () => (first = performance.now() - t0));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 && !Number.isNaN(first) ? resolveRun(first) : reject(new Error(`bare python exited with ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

/** Kernel start → first execute_reply, each on a fresh kernel (deleted after). */
async function jupyterColdStarts() {
  const times = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const t0 = performance.now();
    const id = await startKernel();
    const sock = await JupyterKernelSocket.open(id, true);
    const sent = performance.now() - t0;
    const r = await sock.execute('1 + 1');
    times.push(sent + r.reply);
    sock.close();
    await deleteKernel(id);
  }
  return times;
}

/** Warm round trips on one kernel, one socket per TCP_NODELAY setting. */
async function jupyterWarm(kernelId, noDelay, serverNoDelay = false, warmup = WARMUP) {
  const sock = await JupyterKernelSocket.open(kernelId, noDelay, serverNoDelay);
  try {
    for (let i = 0; i < warmup; i++) await sock.execute('1 + 1');
    const idle = [];
    for (let i = 0; i < WARM_RUNS; i++) {
      const r = await sock.execute('1 + 1');
      if (r.result !== '2') throw new Error(`Jupyter answered ${JSON.stringify(r.result)} to 1 + 1`);
      idle.push(r.idle);
    }
    const stdout = [];
    for (let i = 0; i < STDOUT_RUNS; i++) {
      const r = await sock.execute('print(1)');
      if (Number.isNaN(r.firstStdout)) throw new Error('Jupyter: print(1) sent no stdout');
      stdout.push(r.firstStdout);
    }
    return { idle, stdout };
  } finally {
    sock.close();
  }
}

async function jupyterThroughput(kernelId) {
  const sock = await JupyterKernelSocket.open(kernelId, true, true);
  try {
    const r = await sock.execute(THROUGHPUT_CODE);
    if (r.stdoutBytes !== THROUGHPUT_BYTES) throw new Error(`Jupyter: received ${r.stdoutBytes} stdout bytes, expected ${THROUGHPUT_BYTES}`);
    return { mbps: THROUGHPUT_BYTES / 1e6 / (r.idle / 1000), seconds: r.idle / 1000 };
  } finally {
    sock.close();
  }
}

/** The first cell of a new session (which starts its kernel): SSE request → done. */
async function sluiceColdStarts() {
  const times = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    await pause(NEW_SESSION_SPACING_MS);
    const session = newSession('cold');
    const r = await sseRun(session, { code: '1 + 1', language: 'python', mode: 'kernel' });
    times.push(r.done);
    await deleteSession(session);
  }
  return times;
}

/** Warm kernel: 1 + 1 over one WebSocket and over SSE, print(1) → first stdout, the big cell. */
async function sluiceWarm() {
  const session = newSession('warm');
  await createSession(session);
  const sock = await SluiceSocket.open(session);
  try {
    const wsCells = async () => {
      const times = [];
      for (let i = 0; i < WARM_RUNS; i++) {
        const r = await sock.execute('1 + 1', 'kernel');
        if (r.result !== '2') throw new Error(`Sluice answered ${JSON.stringify(r.result)} to 1 + 1`);
        times.push(r.done);
      }
      return times;
    };
    for (let i = 0; i < WARMUP; i++) await sock.execute('1 + 1', 'kernel');
    const wsYoung = await wsCells();
    for (let i = 0; i < STEADY_WARMUP; i++) await sock.execute('1 + 1', 'kernel');
    const ws = await wsCells();
    const sse = [];
    for (let i = 0; i < STEADY_WARMUP; i++) await sseRun(session, { code: '1 + 1', language: 'python', mode: 'kernel' });
    for (let i = 0; i < WARM_RUNS; i++) {
      const r = await sseRun(session, { code: '1 + 1', language: 'python', mode: 'kernel' });
      if (r.result !== '2') throw new Error(`Sluice (SSE) answered ${JSON.stringify(r.result)} to 1 + 1`);
      sse.push(r.done);
    }
    const sseHTTP = [];
    for (let i = 0; i < STEADY_WARMUP; i++) await sseRunHTTP(session, { code: '1 + 1', language: 'python', mode: 'kernel' });
    for (let i = 0; i < WARM_RUNS; i++) {
      const r = await sseRunHTTP(session, { code: '1 + 1', language: 'python', mode: 'kernel' });
      if (r.result !== '2') throw new Error(`Sluice (SSE, node:http) answered ${JSON.stringify(r.result)} to 1 + 1`);
      sseHTTP.push(r.done);
    }
    const stdout = [];
    for (let i = 0; i < STDOUT_RUNS; i++) {
      const r = await sock.execute('print(1)', 'kernel');
      if (Number.isNaN(r.firstStdout)) throw new Error('Sluice: print(1) sent no stdout');
      stdout.push(r.firstStdout);
    }
    const big = await sock.execute(THROUGHPUT_CODE, 'kernel');
    if (big.stdoutBytes !== THROUGHPUT_BYTES) throw new Error(`Sluice: received ${big.stdoutBytes} stdout bytes, expected ${THROUGHPUT_BYTES}`);
    return { wsYoung, ws, sse, sseHTTP, stdout, throughput: { mbps: THROUGHPUT_BYTES / 1e6 / (big.done / 1000), seconds: big.done / 1000 } };
  } finally {
    sock.close();
    await deleteSession(session);
  }
}

/** New session, process mode, print(1): request → first stdout, alternating with a bare spawn. */
async function firstBytes() {
  const sl = [];
  const bare = [];
  for (let i = -1; i < FIRST_BYTE_RUNS; i++) {
    await pause(NEW_SESSION_SPACING_MS);
    const session = newSession('fb');
    const r = await sseRun(session, { code: 'print(1)', language: 'python', mode: 'process' });
    await deleteSession(session);
    const b = await bareFirstByte();
    if (i < 0) continue; // warm-up
    if (Number.isNaN(r.firstStdout)) throw new Error('Sluice: process-mode print(1) sent no stdout');
    sl.push(r.firstStdout);
    bare.push(b);
  }
  return { sl, bare };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

const fmtLoad = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main() {
  const benchStart = performance.now();
  const versions = await ensureJupyter();
  const py = (await runCommand(PYTHON, ['--version'])).out.trim();
  console.log(`\nSluice beside Jupyter Server — ${new Date().toISOString()}`);
  console.log(
    `machine: ${hostname()}, ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `Linux ${release()}; node ${process.version}; ${py}; jupyter_server ${versions.server}, ipykernel ${versions.kernel}`,
  );
  console.log(`load average at start: ${fmtLoad()}`);

  log('starting Jupyter Server and Sluice');
  await startJupyter();
  await startSluice();

  log(`Jupyter: ${COLD_RUNS} kernel starts`);
  const jCold = await jupyterColdStarts();
  const kernelId = await startKernel();
  log(`Jupyter: ${WARM_RUNS} × 1 + 1 and ${STDOUT_RUNS} × print(1), with TCP_NODELAY and without`);
  const jNoDelay = await jupyterWarm(kernelId, true);
  const jStock = await jupyterWarm(kernelId, false);
  log('Jupyter: the same with TCP_NODELAY on the server side too');
  const jTuned = await jupyterWarm(kernelId, true, true, STEADY_WARMUP);
  log(`Jupyter: ${THROUGHPUT_MIB} MiB cell`);
  const jTp = await jupyterThroughput(kernelId);
  await deleteKernel(kernelId);
  await stopJupyter();

  log(`Sluice: ${COLD_RUNS} cold kernels`);
  const sCold = await sluiceColdStarts();
  log(`Sluice: ${WARM_RUNS} × 1 + 1 over WebSocket and SSE (fetch, node:http), ${STDOUT_RUNS} × print(1), ${THROUGHPUT_MIB} MiB cell`);
  const sWarm = await sluiceWarm();
  log(`Sluice: ${FIRST_BYTE_RUNS} new-session process-mode print(1), alternating with a bare spawn`);
  const fb = await firstBytes();

  const rows = [];
  const ms = (name, s, baseName, b) =>
    rows.push([name, fmtMs(median(s)), fmtMs(pct(s, 99)), baseName, fmtMs(median(b)), fmtMs(pct(b, 99)), fmtRatio(median(s) / median(b))]);
  ms(`kernel cold start (n=${COLD_RUNS})`, sCold, 'Jupyter: kernel start → first execute_reply', jCold);
  ms(`warm 1 + 1 → done, WebSocket (n=${WARM_RUNS})`, sWarm.ws, 'Jupyter WS, stock client: execute → idle', jStock.idle);
  ms(`warm 1 + 1 → done, WebSocket (n=${WARM_RUNS})`, sWarm.ws, 'Jupyter WS, client NODELAY: execute → idle', jNoDelay.idle);
  ms(`warm 1 + 1 → done, WebSocket (n=${WARM_RUNS})`, sWarm.ws, 'Jupyter WS, both NODELAY: execute → idle', jTuned.idle);
  ms(`  the same on a young server (after ${WARMUP} cells)`, sWarm.wsYoung, 'Jupyter WS, both NODELAY: execute → idle', jTuned.idle);
  ms(`warm 1 + 1 → done, SSE keep-alive, fetch (n=${WARM_RUNS})`, sWarm.sse, 'Jupyter WS, both NODELAY: execute → idle', jTuned.idle);
  ms(`warm 1 + 1 → done, SSE keep-alive, node:http (n=${WARM_RUNS})`, sWarm.sseHTTP, 'Jupyter WS, both NODELAY: execute → idle', jTuned.idle);
  ms(`warm print(1) → first stdout, WebSocket (n=${STDOUT_RUNS})`, sWarm.stdout, 'Jupyter WS, stock client', jStock.stdout);
  ms(`warm print(1) → first stdout, WebSocket (n=${STDOUT_RUNS})`, sWarm.stdout, 'Jupyter WS, client NODELAY', jNoDelay.stdout);
  ms(`warm print(1) → first stdout, WebSocket (n=${STDOUT_RUNS})`, sWarm.stdout, 'Jupyter WS, both NODELAY', jTuned.stdout);
  ms(`new session, process print(1) → first stdout (n=${FIRST_BYTE_RUNS})`, fb.sl, "bare python3 -c 'print(1)' spawn → first byte", fb.bare);
  const mbps = (t) => `${t.mbps.toFixed(1)} MB/s`;
  rows.push([
    `${THROUGHPUT_MIB} MiB of 64-byte lines, kernel, WebSocket, execute → done`,
    mbps(sWarm.throughput),
    '—',
    'Jupyter WS, both NODELAY: execute → idle',
    mbps(jTp),
    '—',
    fmtRatio(sWarm.throughput.mbps / jTp.mbps),
  ]);
  console.log(table(['figure (sluice)', 'median', 'p99', 'baseline', 'median', 'p99', 'sluice / baseline'], rows));
  recordFigure('kernel_cold', { sluice: median(sCold), baseline: median(jCold) });
  recordFigure('warm_ws', { sluice: median(sWarm.ws), sluiceP99: pct(sWarm.ws, 99), young: median(sWarm.wsYoung), baseline: median(jTuned.idle), stock: median(jStock.idle) });
  recordFigure('warm_sse', { sluice: median(sWarm.sseHTTP), sluiceP99: pct(sWarm.sseHTTP, 99), fetch: median(sWarm.sse), baseline: median(jTuned.idle) });
  recordFigure('kernel_throughput', { sluice: sWarm.throughput.mbps, baseline: jTp.mbps });
  console.log(
    `times in ms from the client's send, warm rows after ${STEADY_WARMUP} warm-up cells per socket (Jupyter's stock and client-NODELAY sockets: ${WARMUP}); throughput one run each side (${sWarm.throughput.seconds.toFixed(2)} s; ${jTp.seconds.toFixed(2)} s); ` +
      `Jupyter's IOPub rate limits off; load average at end: ${fmtLoad()}; took ${((performance.now() - benchStart) / 1000).toFixed(1)} s`,
  );
}

/** Stops everything; every caller (a signal, a failure, the end) awaits the same work. */
let cleaning = null;
const cleanup = () => (cleaning ??= (async () => {
  await stopJupyter().catch((e) => process.stderr.write(`stopping Jupyter: ${e}\n`));
  await stopSluice().catch((e) => process.stderr.write(`stopping Sluice: ${e}\n`));
  await Promise.all([...children].map(([proc, group]) => stopProc(proc, group)));
})());

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping Jupyter Server and Sluice…\n`);
    cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  if (interrupted) await new Promise(() => {}); // the signal handler finishes and exits
  process.stderr.write(`jupyter bench failed: ${err?.stack ?? err}\n`);
  if (jupyter?.logs) process.stderr.write(`Jupyter Server log:\n${jupyter.logs.slice(-8000)}\n`);
  if (sluice?.logs) process.stderr.write(`Sluice server log:\n${sluice.logs.slice(-8000)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
