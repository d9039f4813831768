#!/usr/bin/env node
// Sluice agent-run benchmark: `node bench/agent.mjs` after a build (`npm run bench` runs it last).
//
// Starts a scripted OpenAI-compatible model on loopback (bench/scripted-model.mjs, its own
// process) and a real server pointed at it (SLUICE_LLM_BASE_URL), then measures, in the same
// run, the agent stream (`POST /api/sessions/{id}/agent`, SSE) against a raw baseline: this
// client reading the model's own stream directly (the same bytes, no Sluice).
//
//   1. first token: the model writes a text chunk holding its wall-clock send time (the clock
//      of common.mjs); the client subtracts it from the arrival of the first `text_delta`, or of
//      the first content chunk for the baseline;
//   2. per-event overhead: the model writes BENCH_AGENT_CHUNKS one-token chunks as fast as the
//      socket takes them; events/s and µs per event between the first and last text arrival,
//      and the CPU each process spent per event;
//   3. one tool round: the model calls run_code (python `print(1)`), then answers; request →
//      `end`, beside a run that answers at once and the same `print(1)` as a plain run.
//
// The server and the model are stopped (and the data dir removed) on every exit path.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { decodeSSEStream, parseAgentEvent, parseExecutionEvent } from '../packages/protocol/dist/index.js';
import { ROOT, calibrateClock, contractEvents, fmtMs, fmtRatio, intEnv, median, pct, startServer, stopProcess, table, toWall } from './common.mjs';

const MODEL_SCRIPT = join(ROOT, 'bench/scripted-model.mjs');
const MODEL = 'bench-model';

/** Sizes, overridable: BENCH_AGENT_RUNS, BENCH_AGENT_THINK_MS, BENCH_AGENT_CHUNKS, BENCH_AGENT_STREAM_RUNS, BENCH_AGENT_TOOL_RUNS. */
const FIRST_TOKEN_RUNS = intEnv('BENCH_AGENT_RUNS', 30);
/** How long the model "thinks" after its headers, so the first chunk travels alone. */
const THINK_MS = intEnv('BENCH_AGENT_THINK_MS', 10);
const CHUNKS = intEnv('BENCH_AGENT_CHUNKS', 20_000);
const STREAM_RUNS = intEnv('BENCH_AGENT_STREAM_RUNS', 5);
const TOOL_RUNS = intEnv('BENCH_AGENT_TOOL_RUNS', 10);

const SESSION = `bench-agent-${process.pid}`;

let model = null;
let server = null;

// ---------------------------------------------------------------------------------------------
// Processes: the scripted model and the server
// ---------------------------------------------------------------------------------------------

/** Spawns a child and resolves with its `listening on <url>` line (from `stream`), or rejects. */
function listening(proc, stream, what, logs) {
  return new Promise((resolveURL, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 20 s:\n${logs.text}`)), 20_000);
    proc[stream].setEncoding('utf8').on('data', (t) => {
      logs.text += t;
      const m = /listening on (http:\/\/[^\s]+)/.exec(logs.text);
      if (m) {
        clearTimeout(timer);
        resolveURL(m[1]);
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code ?? signal}:\n${logs.text}`));
    });
  });
}

async function startModel() {
  // stdin is a pipe so the model exits by itself if this process dies without cleaning up.
  const proc = spawn(process.execPath, [MODEL_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const m = { proc, url: '', logs: { text: '' } };
  model = m;
  proc.stdin.on('error', () => {}); // the model may be gone already; its exit is reported elsewhere
  proc.stderr.setEncoding('utf8').on('data', (t) => (m.logs.text += t));
  m.url = await listening(proc, 'stdout', 'the scripted model', m.logs);
  return m;
}

async function startAgentServer(llmURL) {
  server = await startServer({
    tag: 'bench-agent',
    env: { SLUICE_LLM_BASE_URL: `${llmURL}/v1`, SLUICE_LLM_MODEL: MODEL, SLUICE_LLM_API_KEY: 'sk-bench' },
  });
  return server;
}

/** Stops the server and the model; every caller (a signal, a failure, the end) awaits the same work. */
let cleaning = null;
const cleanup = () => (cleaning ??= stopAll());

async function stopAll() {
  const s = server;
  const m = model;
  server = null;
  model = null;
  await s?.stop();
  if (m) await stopProcess(m.proc);
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
async function processCPU(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime (fields 14, 15)
}
const CLOCK_TICKS = 100;
const clientCPU = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---------------------------------------------------------------------------------------------
// Clients: the agent stream through Sluice, or the model's stream directly
// ---------------------------------------------------------------------------------------------

/**
 * Runs `prompt` as an agent run over SSE, calling onEvent(event, arrivalPerfNow) for every event;
 * returns the `end` event. Throws unless the run ends `completed`.
 */
async function agentRun(prompt, onEvent) {
  const res = await fetch(`${server.url}/api/sessions/${encodeURIComponent(SESSION)}/agent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ prompt }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`agent answered ${res.status}: ${await res.text()}`);
  let end = null;
  for await (const { ev, at } of contractEvents(res.body, parseAgentEvent)) {
    onEvent?.(ev, at);
    if (ev.type === 'end') end = ev;
  }
  if (!end) throw new Error('agent stream ended without end');
  if (end.reason !== 'completed') throw new Error(`agent run ended with ${end.reason}`);
  // The next run starts a fresh conversation, so every model request is the same size.
  const forgot = await fetch(`${server.url}/api/sessions/${encodeURIComponent(SESSION)}/agent`, { method: 'DELETE' });
  if (forgot.status !== 204) throw new Error(`DELETE …/agent answered ${forgot.status}: ${await forgot.text()}`);
  return end;
}

/** Streams `prompt` from the model directly, calling onText(content, arrivalPerfNow) per content chunk. */
async function modelRun(prompt, onText) {
  const res = await fetch(`${model.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: prompt }] }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`the model answered ${res.status}: ${await res.text()}`);
  let done = false;
  for await (const msg of decodeSSEStream(res.body)) {
    const at = performance.now();
    if (msg.data === '[DONE]') {
      done = true;
      continue;
    }
    const content = JSON.parse(msg.data).choices[0]?.delta?.content;
    if (typeof content === 'string' && content !== '') onText(content, at);
  }
  if (!done) throw new Error('the model stream ended without [DONE]');
}

/**
 * Runs python code in the bench session over SSE (`POST /stream`), as run_code submits it (no
 * mode: the session's default, a kernel cell); returns the done event.
 */
async function plainRun(code) {
  const res = await fetch(`${server.url}/api/sessions/${encodeURIComponent(SESSION)}/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, language: 'python' }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
  let done = null;
  for await (const { ev } of contractEvents(res.body, parseExecutionEvent)) if (ev.type === 'done') done = ev;
  if (done?.reason !== 'exited' || done.exit_code !== 0) throw new Error(`print(1) ended with ${JSON.stringify(done)}`);
  return done;
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------
const FIRST_TOKEN_PROMPT = `first-token ${THINK_MS}`;

/**
 * Model send → client arrival of the first text_delta, in ms (same host clock); and model send →
 * the server's log (the event's `ts`, whole ms, so ±1 ms), which splits it into its two hops.
 */
async function sluiceFirstToken() {
  let latency = NaN;
  let upstream = NaN;
  await agentRun(FIRST_TOKEN_PROMPT, (ev, at) => {
    if (ev.type !== 'text_delta' || !Number.isNaN(latency)) return;
    const sent = Number(ev.text);
    latency = toWall(at) - sent;
    upstream = ev.ts - sent;
  });
  if (Number.isNaN(latency)) throw new Error('no text_delta with a send time');
  return { latency, upstream };
}

/** Model send → client arrival of the first content chunk, read from the model directly. */
async function rawFirstToken() {
  let latency = NaN;
  await modelRun(FIRST_TOKEN_PROMPT, (text, at) => {
    if (Number.isNaN(latency)) latency = toWall(at) - Number(text);
  });
  if (Number.isNaN(latency)) throw new Error('no content chunk with a send time');
  return latency;
}

/**
 * CHUNKS one-token chunks as fast as they go: rate between the first and the last text arrival,
 * request → end, and CPU seconds per process (server only on the Sluice path).
 */
async function streamed(read) {
  let n = 0;
  let first = NaN;
  let last = NaN;
  const cpu0 = { model: await processCPU(model.proc.pid), server: await processCPU(server.proc.pid), client: clientCPU() };
  const t0 = performance.now();
  await read((at) => {
    if (n++ === 0) first = at;
    last = at;
  });
  const total = performance.now() - t0;
  const cpu = {
    model: (await processCPU(model.proc.pid)) - cpu0.model,
    server: (await processCPU(server.proc.pid)) - cpu0.server,
    client: clientCPU() - cpu0.client,
  };
  if (n !== CHUNKS) throw new Error(`received ${n} text events, expected ${CHUNKS}`);
  const usPerEvent = ((last - first) * 1000) / (n - 1);
  return { usPerEvent, perSecond: 1e6 / usPerEvent, total, cpu };
}

const STREAM_PROMPT = `stream ${CHUNKS}`;
const sluiceStream = () =>
  streamed((onText) =>
    agentRun(STREAM_PROMPT, (ev, at) => {
      if (ev.type === 'text_delta') onText(at);
    }),
  );
const rawStream = () => streamed((onText) => modelRun(STREAM_PROMPT, (_text, at) => onText(at)));

/** A run that calls run_code once then answers: request → end, and tool_start → tool_end arrivals. */
async function toolRound() {
  let started = NaN;
  let ended = NaN;
  let exitCode = null;
  const t0 = performance.now();
  const end = await agentRun('tool', (ev, at) => {
    if (ev.type === 'tool_start') started = at;
    if (ev.type === 'tool_end') {
      ended = at;
      exitCode = ev.exit_code;
    }
  });
  const total = performance.now() - t0;
  if (end.turns !== 2 || exitCode !== 0) throw new Error(`the tool round ended after ${end.turns} turns, run_code exit ${exitCode}`);
  return { total, tool: ended - started };
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// ---------------------------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------------------------


const fmtUs = (us) => `${us.toFixed(us < 10 ? 2 : 1)} µs`;


const log = (msg) => process.stderr.write(`… ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
async function main() {
  const benchStart = performance.now();
  calibrateClock();
  log('agent bench: starting the scripted model and the server');
  await startModel();
  await startAgentServer(model.url);

  // Warm up every path once (session sandbox, JIT, connections), not counted.
  log('agent bench: warming up');
  await sluiceFirstToken();
  await rawFirstToken();
  await toolRound();
  await agentRun('text');
  await plainRun('print(1)');

  // 1. First token, alternating so drift affects both sides alike.
  log(`agent bench: first token, ${FIRST_TOKEN_RUNS} runs each (the model thinks ${THINK_MS} ms after its headers)`);
  const ftS = [];
  const ftUp = [];
  const ftR = [];
  for (let i = 0; i < FIRST_TOKEN_RUNS; i++) {
    const s = await sluiceFirstToken();
    ftS.push(s.latency);
    ftUp.push(s.upstream);
    ftR.push(await rawFirstToken());
  }

  // 2. Per-event overhead.
  log(`agent bench: ${CHUNKS} one-token chunks × ${STREAM_RUNS} runs, each side`);
  const stS = [];
  const stR = [];
  for (let i = 0; i < STREAM_RUNS; i++) {
    stR.push(await rawStream());
    stS.push(await sluiceStream());
  }

  // 3. Tool rounds.
  log(`agent bench: ${TOOL_RUNS} tool rounds, answer-only runs and a plain print(1) run, alternating`);
  const tool = [];
  const toolSpan = [];
  const textOnly = [];
  const plain = [];
  for (let i = 0; i < TOOL_RUNS; i++) {
    const r = await toolRound();
    tool.push(r.total);
    toolSpan.push(r.tool);
    textOnly.push(await timed(() => agentRun('text')));
    plain.push(await timed(() => plainRun('print(1)')));
  }

  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`\nagent runs (sluice: POST /api/sessions/{id}/agent, SSE; raw: the scripted model's own stream read directly, no sluice); load average ${load} on ${availableParallelism()} cores`);
  const rows = [];
  const msRow = (name, s, r) => rows.push([name, fmtMs(s), fmtMs(r), fmtRatio(s / r), `+${fmtMs(s - r)}`]);
  msRow(`first token, model send → client, median (n=${FIRST_TOKEN_RUNS})`, median(ftS), median(ftR));
  msRow('first token, p95', pct(ftS, 95), pct(ftR, 95));
  rows.push(['  of which model → server log (event ts, ±1 ms), median', fmtMs(median(ftUp)), '', '', '']);
  const medOf = (runs, f) => median(runs.map(f));
  const usS = medOf(stS, (r) => r.usPerEvent);
  const usR = medOf(stR, (r) => r.usPerEvent);
  rows.push([
    `stream of ${CHUNKS} chunks, events/s (median of ${STREAM_RUNS})`,
    `${medOf(stS, (r) => r.perSecond).toFixed(0)}/s`,
    `${medOf(stR, (r) => r.perSecond).toFixed(0)}/s`,
    fmtRatio(medOf(stS, (r) => r.perSecond) / medOf(stR, (r) => r.perSecond)),
    '',
  ]);
  rows.push([`  µs per event at the client`, fmtUs(usS), fmtUs(usR), fmtRatio(usS / usR), `+${fmtUs(usS - usR)}`]);
  msRow(`  request → end`, medOf(stS, (r) => r.total), medOf(stR, (r) => r.total));
  const cpuUs = (runs, proc) => fmtUs(medOf(runs, (r) => (r.cpu[proc] * 1e6) / CHUNKS));
  rows.push(['  CPU per event: server', cpuUs(stS, 'server'), '', '', '']);
  rows.push(['  CPU per event: client; model', `${cpuUs(stS, 'client')}; ${cpuUs(stS, 'model')}`, `${cpuUs(stR, 'client')}; ${cpuUs(stR, 'model')}`, '', '']);
  console.log(table(['metric', 'sluice (agent SSE)', 'raw model stream', 'sluice / raw', 'difference'], rows));

  console.log(`\none tool call (request → end over SSE, median of ${TOOL_RUNS}; the model answers at once)`);
  console.log(
    table(
      ['what', 'median', 'p90'],
      [
        ['agent run: run_code python print(1), then the answer (2 model calls)', fmtMs(median(tool)), fmtMs(pct(tool, 90))],
        ['  of which tool_start → tool_end at the client', fmtMs(median(toolSpan)), fmtMs(pct(toolSpan, 90))],
        ['agent run: the answer only (1 model call)', fmtMs(median(textOnly)), fmtMs(pct(textOnly, 90))],
        ['the same print(1) as a plain run in the session (POST /stream, kernel mode)', fmtMs(median(plain)), fmtMs(pct(plain, 90))],
      ],
    ),
  );
  console.log(`agent bench took ${((performance.now() - benchStart) / 1000).toFixed(1)} s`);
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping the agent bench's server and model…\n`);
    cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
  await cleanup();
} catch (err) {
  // A Ctrl-C reaches the model too, so a request in flight fails: that is the signal's doing.
  if (interrupted) await cleanup();
  else await failed(err);
}

async function failed(err) {
  process.stderr.write(`agent bench failed: ${err?.stack ?? err}\n`);
  if (server?.logs) process.stderr.write(`server log:\n${server.logs}\n`);
  if (model?.logs.text) process.stderr.write(`model log:\n${model.logs.text}\n`);
  await cleanup().catch((e) => process.stderr.write(`cleanup failed: ${e}\n`));
  process.exitCode = 1;
}
