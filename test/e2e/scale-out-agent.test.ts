/**
 * Scale-out (issue 16), agent runs: a run started through one API node runs on the worker that
 * owns the session (the model endpoint is the workers' configuration) and is served from Redis
 * by any API node: its text and a run_code tool's live output stream through API node A; A is
 * SIGKILLed and the client resumes through B with nothing lost; a cancel and a forget go through
 * the other node; a worker SIGKILLed mid-run ends the run's stream (error naming sandbox_lost,
 * then `end`), never silence. Real redis-server, two API nodes and two workers as separate
 * processes, a scripted model on loopback; the tests run in order (two of them kill a node).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSSEStream, parseAgentEvent, type AgentEvent, type AgentRunView, type ExecutionView } from '@sluice/protocol';
import { useCluster } from './helpers/cluster.js';
import { call, createSession, sessionId, until } from './helpers/cluster-client.js';
import { assertScriptUsed, textReply, toolCallReply } from './helpers/scripted-llm.js';

const { skip, cluster: c, model } = useCluster({ apis: 2, workers: 2, model: true, env: { SLUICE_LLM_TIMEOUT: '60' } });

/** `POST /api/sessions/{id}/agent` asking for SSE. */
function agentPost(base: string, session: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return call(base, 'POST', `/api/sessions/${session}/agent`, body, { headers: { accept: 'text/event-stream' }, ...(signal ? { signal } : {}) });
}

/**
 * Reads an SSE agent stream into `into` (checking id = seq, event = type) until it ends, `stop`
 * says so, or the connection breaks; resolves with how it ended.
 */
async function readAgent(res: Response, into: AgentEvent[], stop?: (ev: AgentEvent) => boolean): Promise<'end' | 'stopped' | 'error'> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}: ${res.status === 200 ? '' : await res.text()}`);
  assert.ok(res.body);
  const ac = new AbortController();
  try {
    for await (const msg of decodeSSEStream(res.body, ac.signal)) {
      const parsed = parseAgentEvent(JSON.parse(msg.data));
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
      assert.equal(msg.id, String(parsed.value.seq), 'the SSE id is the seq');
      assert.equal(msg.event, parsed.value.type, 'the SSE event name is the type');
      into.push(parsed.value);
      if (stop?.(parsed.value)) {
        ac.abort();
        return 'stopped';
      }
    }
    return 'end';
  } catch (err) {
    if (ac.signal.aborted) return 'stopped';
    if (err instanceof assert.AssertionError) throw err;
    return 'error';
  }
}

function toolOutput(events: readonly AgentEvent[]): string {
  let s = '';
  for (const e of events) if (e.type === 'tool_output_delta') s += e.text;
  return s;
}

function assertWholeRun(events: readonly AgentEvent[], what: string): Extract<AgentEvent, { type: 'end' }> {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
    `${what}: seq runs 1..n, each once`,
  );
  assert.equal(events[0]?.type, 'agent_start', `${what}: agent_start first`);
  assert.equal(events.filter((e) => e.type === 'end').length, 1, `${what}: exactly one end`);
  const end = events.at(-1);
  assert.ok(end?.type === 'end', `${what}: end is last: ${JSON.stringify(end)}`);
  return end;
}

async function runView(base: string, runID: string): Promise<AgentRunView> {
  const res = await call(base, 'GET', `/api/agent-runs/${runID}`);
  assert.equal(res.status, 200, `GET /api/agent-runs/${runID} on ${base}: ${res.status}`);
  return (await res.json()) as AgentRunView;
}

test('cancel and forget through the other API node: the stream on the first ends cancelled', { skip, timeout: 60_000 }, async () => {
  const cl = c();
  const [api0, api1] = cl.apis;
  assert.ok(api0 && api1);
  const sid = sessionId('agent-cancel');
  await createSession(api0.url, sid);
  model().push({ steps: [{ text: 'Thinking' }, { hold: 'cluster-cancel' }, { text: ' more' }, { finish: 'stop' }] });
  const res = await agentPost(api0.url, sid, { prompt: 'think' });
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID, 'Sluice-Agent-Run-Id');
  const events: AgentEvent[] = [];
  const reading = readAgent(res, events);
  await model().reached('cluster-cancel');
  await until('"Thinking" on api1', 15_000, async () => (await runView(api1.url, runID)).text === 'Thinking', cl.logs);
  assert.equal((await call(api1.url, 'GET', '/api/agent-runs/no-such-run')).status, 404);

  const cancel = await call(api1.url, 'POST', `/api/agent-runs/${runID}/cancel`);
  assert.equal(cancel.status, 202, await cancel.clone().text());
  assert.equal(await reading, 'end');
  const end = assertWholeRun(events, 'api0 stream');
  assert.equal(end.reason, 'cancelled');
  assert.equal(end.text, 'Thinking');
  model().release('cluster-cancel');

  await until('the run finished in its view on api1', 10_000, async () => (await runView(api1.url, runID)).state === 'finished');
  const again = await call(api1.url, 'POST', `/api/agent-runs/${runID}/cancel`);
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json(), { run_id: runID, state: 'finished', cancelled: false });
  const view = await runView(api0.url, runID);
  assert.equal(view.reason, 'cancelled');
  assert.equal(view.model, 'gpt-4o-mini');
  assert.equal(view.session_id, sid);
  assert.ok(view.finished_at, 'finished_at set');

  // The conversation lives on the session's worker: forgetting it through api1 reaches there.
  const forget = await call(api1.url, 'DELETE', `/api/sessions/${sid}/agent`);
  assert.equal(forget.status, 204, await forget.clone().text());
  const before = model().requests.length;
  model().push(textReply('Fresh.'));
  const next: AgentEvent[] = [];
  assert.equal(await readAgent(await agentPost(api1.url, sid, { prompt: 'again' }), next), 'end');
  assert.equal(assertWholeRun(next, 'after forget').reason, 'completed');
  const sent = model().requests[before]?.body.messages ?? [];
  assert.equal(sent.filter((m) => m.role === 'user').length, 1, `the forgotten conversation is not sent again: ${JSON.stringify(sent)}`);
  assertScriptUsed(model());
});

test('a run started through api0 streams text and live tool output; api0 SIGKILLed, the client resumes through api1 with nothing lost', { skip, timeout: 90_000 }, async () => {
  const cl = c();
  const [api0, api1] = cl.apis;
  assert.ok(api0 && api1);
  const sid = sessionId('agent-resume');
  const ticks = 12;
  const code = `import time\nfor i in range(${ticks}):\n    print(f"tick {i}", flush=True)\n    time.sleep(0.25)\n`;
  model().push(toolCallReply('run_code', { code }, { id: 'call_ticks', text: 'Running it.' }), textReply('Ticked.'));
  const res = await agentPost(api0.url, sid, { prompt: 'tick' });
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const head: AgentEvent[] = [];
  // Text first, then the code's output while it runs.
  assert.equal(await readAgent(res, head, (ev) => ev.type === 'tool_output_delta' && toolOutput([ev]).includes('tick 1')), 'stopped');
  assert.ok(
    head.some((e) => e.type === 'text_delta' && e.text.includes('Running it.')),
    `text streamed before the tool: ${JSON.stringify(head.map((e) => e.type))}`,
  );
  const live = head.findLast((e) => e.type === 'tool_output_delta');
  assert.ok(live?.type === 'tool_output_delta');
  assert.ok(!head.some((e) => e.type === 'tool_end'), 'the output arrived while the code ran');

  await api0.kill();
  const last = head.at(-1)?.seq ?? 0;
  const resumed = await call(api1.url, 'GET', `/api/agent-runs/${runID}/events`, undefined, { headers: { accept: 'text/event-stream', 'last-event-id': String(last) } });
  const tail: AgentEvent[] = [];
  assert.equal(await readAgent(resumed, tail), 'end');
  const all = [...head, ...tail];
  const end = assertWholeRun(all, 'api0 then api1');
  assert.equal(end.reason, 'completed');
  assert.equal(end.text, 'Ticked.');
  assert.equal(toolOutput(all), Array.from({ length: ticks }, (_, i) => `tick ${i}\n`).join(''), 'every line of the tool output once');
  const replay: AgentEvent[] = [];
  assert.equal(await readAgent(await call(api1.url, 'GET', `/api/agent-runs/${runID}/events?from=1`, undefined, { headers: { accept: 'text/event-stream' } }), replay), 'end');
  assert.deepEqual(replay, all, 'a replay through api1 is the same log');

  // The tool's execution is in Redis too: any API node can show it.
  assert.ok(live.execution_id, 'tool_output_delta names its execution');
  const exec = await call(api1.url, 'GET', `/api/executions/${live.execution_id}`);
  assert.equal(exec.status, 200);
  const ev = (await exec.json()) as ExecutionView;
  assert.equal(ev.state, 'finished');
  assert.equal(ev.stdout, toolOutput(all));
  assertScriptUsed(model());
});

test('a worker SIGKILLed mid-run: the run\'s stream ends with an error naming sandbox_lost and end (reason error), never silence', { skip, timeout: 90_000 }, async () => {
  const cl = c();
  const api = cl.apis.find((n) => n.alive);
  assert.ok(api, 'an API node alive');
  const sid = sessionId('agent-lost');
  await createSession(api.url, sid);
  const owner = await cl.workerOf(sid);
  assert.ok(owner, `session ${sid} placed on a known worker`);
  const code = 'import time\nfor i in range(600):\n    print(f"tick {i}", flush=True)\n    time.sleep(0.1)\n';
  model().push(toolCallReply('run_code', { code }, { id: 'call_forever' }));
  const res = await agentPost(api.url, sid, { prompt: 'tick forever' });
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const events: AgentEvent[] = [];
  const reading = readAgent(res, events);
  await until('the tool ticking', 30_000, () => toolOutput(events).includes('tick 2'), cl.logs);

  await owner.kill();
  const ended = await Promise.race([reading, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 40_000).unref())]);
  assert.equal(ended, 'end', `the stream ended within 40 s of the worker's death\n${cl.logs()}`);
  const end = assertWholeRun(events, 'stream of a lost run');
  assert.equal(end.reason, 'error');
  const error = events.at(-2);
  assert.ok(error?.type === 'error', `error before end: ${JSON.stringify(error)}`);
  assert.equal(error.code, 'SANDBOX_UNAVAILABLE');
  assert.match(error.error, /sandbox_lost/);
  assert.equal(end.turns, 1, 'the turns begun are counted');

  const view = await runView(api.url, runID);
  assert.equal(view.state, 'finished');
  assert.equal(view.reason, 'error');
  assert.equal(view.error?.code, 'SANDBOX_UNAVAILABLE');
  // A late reader gets the same end from the start.
  const replay: AgentEvent[] = [];
  assert.equal(await readAgent(await call(api.url, 'GET', `/api/agent-runs/${runID}/events?from=1`, undefined, { headers: { accept: 'text/event-stream' } }), replay), 'end');
  assert.deepEqual(replay, events);
});
