/**
 * `GET /metrics` end to end (docs/operations.md): a real server and real sandboxes, scraped
 * before and after work (runs over SSE, NDJSON, buffered JSON and WebSocket, a kernel, a
 * program still running, an agent run against the scripted model), checking that each counter
 * and histogram moved by what the work was; no id in any label; a key needed when keys are set.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { postJSON, readNDJSON, readSSE } from './helpers/client.js';
import { waitFor } from './helpers/host.js';
import { startScriptedLLM, textReply, type ScriptedLLM } from './helpers/scripted-llm.js';
import { startServer, type TestServer } from './helpers/server.js';

let llm: ScriptedLLM;
let server: TestServer;
before(async () => {
  llm = await startScriptedLLM();
  server = await startServer({ SLUICE_LLM_BASE_URL: llm.baseURL, SLUICE_LLM_MODEL: 'gpt-4o-mini' });
});
after(async () => {
  await server?.stop();
  await llm?.close();
});

/** Series name with its labels as written (`name{a="b"}`) → value. */
type Samples = Map<string, number>;

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ samples: Samples; text: string }> {
  const res = await fetch(`${url}/metrics`, { headers });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { samples, text };
}

const value = (s: Samples, series: string): number => s.get(series) ?? 0;
const moved = (before: Samples, after: Samples, series: string): number => value(after, series) - value(before, series);

test('an SSE run counts one execution, one duration and one first output, and its bytes', async () => {
  const s0 = (await scrape(server.url)).samples;
  const res = await postJSON(`${server.url}/api/sessions/m-sse/stream`, { code: 'import time\ntime.sleep(0.3)\nprint("hello")', mode: 'process' });
  const received = (await res.clone().arrayBuffer()).byteLength;
  const events = await readSSE(res);
  const done = events.at(-1);
  assert.equal(done?.type, 'done');
  const s1 = await waitFor('the execution in the metrics', 10_000, async () => {
    const s = (await scrape(server.url)).samples;
    return moved(s0, s, 'sluice_executions_total{language="python",mode="process",reason="exited"}') === 1 ? s : undefined;
  });
  assert.equal(moved(s0, s1, 'sluice_execution_duration_seconds_count{language="python",mode="process"}'), 1);
  assert.equal(moved(s0, s1, 'sluice_first_output_seconds_count{language="python",mode="process"}'), 1);
  // It slept 0.3 s before it printed: the first output and the duration say at least that.
  assert.ok(moved(s0, s1, 'sluice_first_output_seconds_sum{language="python",mode="process"}') >= 0.3);
  assert.equal(moved(s0, s1, 'sluice_first_output_seconds_bucket{le="0.25",language="python",mode="process"}'), 0);
  assert.equal(moved(s0, s1, 'sluice_first_output_seconds_bucket{le="+Inf",language="python",mode="process"}'), 1);
  const duration = moved(s0, s1, 'sluice_execution_duration_seconds_sum{language="python",mode="process"}');
  assert.ok(done?.type === 'done' && Math.abs(duration - done.duration_ms / 1000) < 0.001, `duration sum moved ${duration}`);
  // What the client received, plus the response head (framing and headers count too).
  const sse = moved(s0, s1, 'sluice_stream_bytes_total{transport="sse"}');
  assert.ok(sse >= received && sse < received + 2048, `sse bytes moved ${sse}, the client read ${received} of body`);
  assert.ok(value(s1, 'sluice_sessions') >= 1);
});

test('NDJSON, buffered JSON and WebSocket runs count their bytes under their own transport', async () => {
  const s0 = (await scrape(server.url)).samples;
  const nd = await postJSON(`${server.url}/api/sessions/m-nd/run`, { code: 'echo nd', language: 'bash' }, { accept: 'application/x-ndjson' });
  const ndBody = (await nd.clone().arrayBuffer()).byteLength;
  assert.equal((await readNDJSON(nd)).at(-1)?.type, 'done');
  const js = await postJSON(`${server.url}/api/sessions/m-nd/run`, { code: 'echo js', language: 'bash' });
  const jsBody = (await js.arrayBuffer()).byteLength;
  assert.equal(js.status, 200);

  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/sessions/m-nd/ws`);
  let wsBytes = 0;
  const gotDone = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      wsBytes += data.length;
      if ((JSON.parse(data.toString('utf8')) as { type: string }).type === 'done') resolve();
    });
    ws.on('error', reject);
  });
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ type: 'execute', request_id: 'r1', code: 'echo ws', language: 'bash' }));
  await gotDone;
  const s1 = await waitFor('the websocket bytes', 10_000, async () => {
    const s = (await scrape(server.url)).samples;
    return moved(s0, s, 'sluice_stream_bytes_total{transport="websocket"}') >= wsBytes ? s : undefined;
  });
  ws.close();
  const b = (t: string): number => moved(s0, s1, `sluice_stream_bytes_total{transport="${t}"}`);
  assert.ok(b('ndjson') >= ndBody && b('ndjson') < ndBody + 2048, `ndjson moved ${b('ndjson')}, body ${ndBody}`);
  assert.ok(b('json') >= jsBody && b('json') < jsBody + 2048, `json moved ${b('json')}, body ${jsBody}`);
  // Frames add a few bytes each; the upgrade's 101 answer may count too.
  assert.ok(b('websocket') >= wsBytes && b('websocket') < wsBytes + 1024, `websocket moved ${b('websocket')}, payloads ${wsBytes}`);
  assert.equal(moved(s0, s1, 'sluice_executions_total{language="bash",mode="process",reason="exited"}'), 3);
});

test('the running-executions and kernels gauges follow what runs now', async () => {
  const k0 = value((await scrape(server.url)).samples, 'sluice_kernels');
  const res = await postJSON(`${server.url}/api/sessions/m-run/stream`, { code: 'import time\nprint("up", flush=True)\ntime.sleep(60)', mode: 'kernel' });
  const ac = new AbortController();
  const reading = readSSE(res, undefined, ac.signal).catch(() => []);
  const running = await waitFor('a running execution and its kernel', 20_000, async () => {
    const s = (await scrape(server.url)).samples;
    return value(s, 'sluice_running_executions') >= 1 && value(s, 'sluice_kernels') >= k0 + 1 ? s : undefined;
  });
  assert.ok(value(running, 'sluice_kernels') >= 1);
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id);
  await postJSON(`${server.url}/api/executions/${id}/cancel`, {});
  await waitFor('no running execution', 20_000, async () => (value((await scrape(server.url)).samples, 'sluice_running_executions') === 0 ? true : undefined));
  ac.abort();
  await reading;
  const s = (await scrape(server.url)).samples;
  assert.ok(value(s, 'sluice_executions_total{language="python",mode="kernel",reason="cancelled"}') >= 1);
});

test('an agent run counts under its end reason, and its tokens by kind', async () => {
  const s0 = (await scrape(server.url)).samples;
  llm.push(textReply('Hi.', { prompt: 17, completion: 4 }));
  const res = await postJSON(`${server.url}/api/sessions/m-agent/agent`, { prompt: 'Say hi.' });
  assert.equal(res.status, 200, await res.clone().text());
  const s1 = await waitFor('the agent run in the metrics', 10_000, async () => {
    const s = (await scrape(server.url)).samples;
    return moved(s0, s, 'sluice_agent_runs_total{reason="completed"}') === 1 ? s : undefined;
  });
  assert.equal(moved(s0, s1, 'sluice_llm_tokens_total{kind="prompt"}'), 17);
  assert.equal(moved(s0, s1, 'sluice_llm_tokens_total{kind="completion"}'), 4);
  assert.equal(moved(s0, s1, 'sluice_agent_runs_total{reason="error"}'), 0);
});

test('labels come from closed sets: no session or execution id, and the process metrics are there', async () => {
  const { text } = await scrape(server.url);
  for (const id of ['m-sse', 'm-nd', 'm-run', 'm-agent']) assert.ok(!text.includes(id), `${id} appears in /metrics`);
  assert.match(text, /^process_cpu_seconds_total /m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.match(text, /^# TYPE sluice_first_output_seconds histogram$/m);
  assert.match(text, /^# TYPE sluice_execution_duration_seconds histogram$/m);
  for (const name of ['sluice_sessions', 'sluice_running_executions', 'sluice_kernels']) assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'));
  // Every label name used anywhere in sluice_* series.
  const labels = new Set<string>();
  for (const m of text.matchAll(/^sluice_[a-z_]+\{([^}]*)\}/gm)) for (const l of (m[1] ?? '').matchAll(/([a-z_]+)="/g)) labels.add(l[1] ?? '');
  assert.deepEqual([...labels].sort(), ['kind', 'language', 'le', 'mode', 'reason', 'transport']);
});

test('with API keys configured, /metrics needs one', async () => {
  const key = 'metrics-key-0123456789abcdef';
  const keyed = await startServer({ SLUICE_API_KEYS: key });
  try {
    const anon = await fetch(`${keyed.url}/metrics`);
    assert.equal(anon.status, 401);
    assert.equal(((await anon.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    const { samples } = await scrape(keyed.url, { authorization: `Bearer ${key}` });
    assert.equal(value(samples, 'sluice_sessions'), 0);
  } finally {
    await keyed.stop();
  }
});
