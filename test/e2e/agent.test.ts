/**
 * Agent runs end to end (docs/agents.md): a real Sluice server with real sandboxes, and a
 * scripted OpenAI-compatible model on loopback that streams OpenAI's chunk bytes. Checks the
 * event order and fields, that tool output arrives while the code runs, what the model was
 * sent back, the kept conversation, every transport (SSE, NDJSON, JSON, WebSocket), resume,
 * cancel (during the model's stream and during a tool run), the key's confinement, malformed
 * tool calls, max_turns, the model's `length` stop, retries and failures.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { decodeSSEStream, parseAgentEvent, type AgentEvent, type AgentRunResult, type AgentRunView } from '@sluice/protocol';
import { postJSON } from './helpers/client.js';
import { waitFor } from './helpers/host.js';
import { assertScriptUsed, startScriptedLLM, textReply, toolCallReply, type ScriptedLLM } from './helpers/scripted-llm.js';
import { startServer, type TestServer } from './helpers/server.js';

const KEY = 'sk-test-SECRET-0123456789abcdefXYZ';
const MODEL = 'gpt-4o-mini';

let llm: ScriptedLLM;
let server: TestServer;
before(async () => {
  llm = await startScriptedLLM();
  server = await startServer({
    SLUICE_LLM_BASE_URL: llm.baseURL,
    SLUICE_LLM_API_KEY: KEY,
    SLUICE_LLM_MODEL: MODEL,
    SLUICE_LLM_MODELS: 'other-model',
    SLUICE_LLM_TIMEOUT: '2',
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_HEARTBEAT: '1',
  });
});
after(async () => {
  await server?.stop();
  await llm?.close();
});

type Timed = AgentEvent & { arrivedAt: number };

/** Reads an SSE agent stream to its end (or until `stopAfter` says stop), with arrival times. */
async function readAgentSSE(res: Response, stopAfter?: (ev: AgentEvent) => boolean): Promise<Timed[]> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}: ${res.status === 200 ? '' : await res.text()}`);
  assert.ok(res.body);
  const ac = new AbortController();
  const out: Timed[] = [];
  try {
    for await (const msg of decodeSSEStream(res.body, ac.signal)) {
      const parsed = parseAgentEvent(JSON.parse(msg.data));
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
      assert.equal(msg.id, String(parsed.value.seq), 'the SSE id is the seq');
      assert.equal(msg.event, parsed.value.type, 'the SSE event name is the type');
      out.push({ ...parsed.value, arrivedAt: Date.now() });
      if (stopAfter?.(parsed.value)) {
        ac.abort();
        break;
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  }
  return out;
}

function agentPost(session: string, body: Record<string, unknown>, accept = 'text/event-stream', signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/api/sessions/${session}/agent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

function ofType<T extends AgentEvent['type'], E extends AgentEvent>(events: readonly E[], type: T): (E & { type: T })[] {
  return events.filter((e): e is E & { type: T } => e.type === type);
}

function types(events: readonly AgentEvent[]): string[] {
  return events.map((e) => e.type);
}

function assertWellFormed(events: readonly AgentEvent[]): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
    'seq runs 1..n without gaps',
  );
  assert.equal(events[0]?.type, 'agent_start');
  assert.equal(events.at(-1)?.type, 'end', 'end is last');
  assert.equal(events.filter((e) => e.type === 'end').length, 1, 'exactly one end');
}

function endOf(events: readonly AgentEvent[]): Extract<AgentEvent, { type: 'end' }> {
  const end = events.at(-1);
  assert.ok(end && end.type === 'end', `the last event is end: ${JSON.stringify(end)}`);
  return end;
}

test('a run streams text, the code as the model writes it, its live output, and the answer; the model gets the result', async () => {
  llm.push(
    toolCallReply('run_code', { code: 'import time\nprint("first", flush=True)\ntime.sleep(2)\nprint("second")\n21 * 2' }, { id: 'call_one', text: 'Let me run it.' }),
    textReply('The answer is 42.', { prompt: 50, completion: 6 }),
  );
  const before = llm.requests.length;
  const events = await readAgentSSE(await agentPost('agent-basic', { prompt: 'What is 21*2? Print first and second.' }));
  assertWellFormed(events);
  assert.deepEqual(
    types(events).filter((t) => t !== 'tool_input_delta' && t !== 'text_delta' && t !== 'tool_output_delta'),
    ['agent_start', 'turn_start', 'turn_end', 'tool_start', 'tool_result', 'tool_end', 'turn_start', 'turn_end', 'end'],
  );
  const start = events[0];
  assert.ok(start?.type === 'agent_start');
  assert.equal(start.session_id, 'agent-basic');
  assert.equal(start.model, MODEL);

  // The code streams as the model writes it (in pieces that split JSON tokens) before it runs.
  const inputs = ofType(events, 'tool_input_delta');
  assert.ok(inputs.length > 3, `the arguments came in pieces: ${inputs.length}`);
  assert.ok(inputs.every((e) => e.tool_id === 'call_one' && e.tool_name === 'run_code'));
  const toolStart = events.find((e) => e.type === 'tool_start');
  assert.ok(toolStart?.type === 'tool_start');
  assert.deepEqual(JSON.parse(inputs.map((e) => e.text).join('')), toolStart.input);
  assert.ok((inputs.at(-1)?.seq ?? 0) < toolStart.seq);

  // Output arrives while the code runs: "first" long before the end of the 2 s sleep.
  const outputs = ofType(events, 'tool_output_delta');
  assert.equal(outputs.map((e) => e.text).join(''), 'first\nsecond\n');
  const first = outputs.find((e) => e.text.includes('first'));
  const toolEnd = ofType(events, 'tool_end')[0];
  assert.ok(first && toolEnd);
  assert.ok(toolEnd.arrivedAt - first.arrivedAt >= 1000, `"first" arrived ${toolEnd.arrivedAt - first.arrivedAt} ms before tool_end (the code sleeps 2 s in between)`);
  assert.equal(toolEnd.exit_code, 0);
  assert.equal(toolEnd.reason, 'exited');
  assert.ok(toolEnd.execution_id, 'tool_end names the execution');
  assert.equal(first.execution_id, toolEnd.execution_id);
  const result = events.find((e) => e.type === 'tool_result');
  assert.ok(result?.type === 'tool_result');
  assert.equal(result.data['text/plain'], '42');

  // The text of each turn, and the final answer.
  const texts = ofType(events, 'text_delta').map((e) => e.text);
  assert.deepEqual(texts, ['Let me run it.', 'The answer is 42.']);
  const end = endOf(events);
  assert.equal(end.reason, 'completed');
  assert.equal(end.text, 'The answer is 42.');
  assert.equal(end.turns, 2);
  assert.equal(end.total_tokens, 40 + 56);
  const turnEnds = ofType(events, 'turn_end');
  assert.deepEqual(turnEnds.map((e) => e.total_tokens), [40, 96]);

  // What the model was sent: streaming with usage, the tools, then the tool result with its call id.
  const [req1, req2] = llm.requests.slice(before);
  assert.ok(req1 && req2);
  assert.equal(req1.body.stream, true);
  assert.deepEqual(req1.body.stream_options, { include_usage: true });
  assert.deepEqual(req1.body.tools?.map((t) => t.function.name), ['run_code', 'read_file', 'write_file', 'list_files']);
  assert.equal(req1.headers.authorization, `Bearer ${KEY}`);
  const assistant = req2.body.messages.at(-2);
  assert.equal(assistant?.role, 'assistant');
  assert.equal(assistant?.tool_calls?.[0]?.id, 'call_one');
  const toolMsg = req2.body.messages.at(-1);
  assert.equal(toolMsg?.role, 'tool');
  assert.equal(toolMsg?.tool_call_id, 'call_one');
  assert.match(toolMsg?.content ?? '', /exit_code: 0/);
  assert.match(toolMsg?.content ?? '', /first\nsecond/);
  assert.match(toolMsg?.content ?? '', /result:\n42/);
  assert.equal(toolEnd.tool_output, toolMsg?.content, 'tool_end carries exactly what the model was told');
  assertScriptUsed(llm);

  // The run and its execution stay readable.
  const view = (await (await fetch(`${server.url}/api/agent-runs/${start.run_id}`)).json()) as AgentRunView;
  assert.equal(view.state, 'finished');
  assert.equal(view.text, 'The answer is 42.');
  assert.equal(view.tool_calls.length, 1);
  assert.equal(view.tool_calls[0]?.exit_code, 0);
  assert.equal(view.last_seq, events.length);
  const exec = await fetch(`${server.url}/api/executions/${toolEnd.execution_id}`);
  assert.equal(exec.status, 200);
});

test('the session keeps the conversation; DELETE …/agent forgets it', async () => {
  llm.push(textReply('Hello Ada.'), textReply('Your name is Ada.'), textReply('I do not know your name.'));
  const base = llm.requests.length;
  const r1 = await agentPost('agent-conv', { prompt: 'My name is Ada.' }, 'application/json');
  assert.equal(r1.status, 200);
  const fold1 = (await r1.json()) as AgentRunResult;
  assert.equal(fold1.text, 'Hello Ada.');
  assert.equal(fold1.reason, 'completed');
  const r2 = await agentPost('agent-conv', { prompt: 'What is my name?' }, 'application/json');
  assert.equal(((await r2.json()) as AgentRunResult).text, 'Your name is Ada.');
  const sent2 = llm.requests[base + 1]?.body.messages.map((m) => `${m.role}:${m.content ?? ''}`);
  assert.deepEqual(sent2?.slice(1), ['user:My name is Ada.', 'assistant:Hello Ada.', 'user:What is my name?']);
  assert.equal(llm.requests[base + 1]?.body.messages[0]?.role, 'system');

  const del = await fetch(`${server.url}/api/sessions/agent-conv/agent`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  await (await agentPost('agent-conv', { prompt: 'What is my name?' }, 'application/json')).json();
  const sent3 = llm.requests[base + 2]?.body.messages.map((m) => m.role);
  assert.deepEqual(sent3, ['system', 'user'], 'a forgotten conversation starts again');
  assertScriptUsed(llm);
});

test('NDJSON carries the same events; the buffered JSON answer is the fold', async () => {
  llm.push(toolCallReply('write_file', { path: 'notes/a.txt', content: 'héllo' }, { id: 'call_w' }), toolCallReply('read_file', { path: '/workspace/notes/a.txt' }, { id: 'call_r' }), textReply('Done.'));
  const res = await agentPost('agent-nd', { prompt: 'write then read' }, 'application/x-ndjson');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const lines = (await res.text()).split('\n').filter((l) => l !== '');
  const events = lines.map((l) => {
    const p = parseAgentEvent(JSON.parse(l));
    assert.ok(p.ok);
    return p.value;
  });
  assertWellFormed(events);
  const ends = ofType(events, 'tool_end');
  assert.equal(ends.length, 2);
  assert.equal(ends[0]?.exit_code, 0);
  assert.equal(ends[1]?.tool_output, 'héllo');
  const file = await fetch(`${server.url}/api/sessions/agent-nd/files/notes/a.txt`);
  assert.equal(await file.text(), 'héllo');
  const view = (await (await fetch(`${server.url}/api/agent-runs/${runID}`)).json()) as AgentRunView;
  assert.deepEqual(
    view.tool_calls.map((c) => [c.tool_name, c.exit_code]),
    [
      ['write_file', 0],
      ['read_file', 0],
    ],
  );
  assert.deepEqual(view.tool_calls[0]?.input, { path: 'notes/a.txt', content: 'héllo' });
  assertScriptUsed(llm);
});

test('malformed tool calls are answered to the model as tool errors, and the run goes on', async () => {
  llm.push(
    {
      steps: [
        { toolCall: { index: 0, id: 'call_badjson', name: 'run_code' } },
        { args: '{"code": "print(1)', index: 0 },
        { toolCall: { index: 1, id: 'call_unknown', name: 'delete_everything' } },
        { args: '{}', index: 1 },
        { toolCall: { index: 2, id: 'call_missing', name: 'write_file' } },
        { args: '{"path": "x.txt"}', index: 2 },
        { finish: 'tool_calls' },
        { usage: { prompt: 10, completion: 10 } },
      ],
    },
    textReply('Sorry about that.'),
  );
  const base = llm.requests.length;
  const events = await readAgentSSE(await agentPost('agent-bad', { prompt: 'go' }));
  assertWellFormed(events);
  const ends = ofType(events, 'tool_end');
  assert.deepEqual(
    ends.map((e) => [e.tool_id, e.reason, e.exit_code]),
    [
      ['call_badjson', 'invalid', null],
      ['call_unknown', 'invalid', null],
      ['call_missing', 'invalid', null],
    ],
  );
  assert.match(ends[0]?.tool_output ?? '', /not a JSON object/);
  assert.match(ends[1]?.tool_output ?? '', /unknown tool "delete_everything"/);
  assert.match(ends[2]?.tool_output ?? '', /write_file\.content: expected a string \(it is required\)/);
  const sent = llm.requests[base + 1]?.body.messages ?? [];
  assert.deepEqual(
    sent.filter((m) => m.role === 'tool').map((m) => m.tool_call_id),
    ['call_badjson', 'call_unknown', 'call_missing'],
  );
  // The history the model gets back holds JSON arguments only.
  const calls = sent.find((m) => m.role === 'assistant')?.tool_calls ?? [];
  for (const c of calls) assert.doesNotThrow(() => JSON.parse(c.function.arguments));
  assert.equal(endOf(events).reason, 'completed');
  assertScriptUsed(llm);
});

test('providers\' quirks: no index, frames cut anywhere, several calls in one turn', async () => {
  const frame = (delta: string): string =>
    `data: {"id":"chatcmpl-q","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":${delta},"finish_reason":null}]}\n\n`;
  const body =
    frame('{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"list_files","arguments":""}}]}') +
    frame('{"tool_calls":[{"function":{"arguments":"{\\"di"}}]}') +
    frame('{"tool_calls":[{"function":{"arguments":"r\\": \\"\\"}"}}]}') +
    frame('{"tool_calls":[{"id":"call_b","type":"function","function":{"name":"list_files","arguments":"{}"}}]}') +
    'data: {"id":"chatcmpl-q","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n';
  // Cut every 13 bytes: frames, JSON tokens and escapes split across reads.
  const raw: { raw: string }[] = [];
  for (let i = 0; i < body.length; i += 13) raw.push({ raw: body.slice(i, i + 13) });
  llm.push({ steps: raw }, textReply('Both listed.'));
  const events = await readAgentSSE(await agentPost('agent-quirks', { prompt: 'list twice' }));
  assertWellFormed(events);
  const starts = ofType(events, 'tool_start');
  assert.deepEqual(
    starts.map((e) => [e.tool_id, e.tool_name, e.input]),
    [
      ['call_a', 'list_files', { dir: '' }],
      ['call_b', 'list_files', {}],
    ],
  );
  assert.equal(endOf(events).reason, 'completed');
  assertScriptUsed(llm);
});

test('max_turns ends a run that keeps calling tools; the model\'s length stop ends it truthfully', async () => {
  llm.push(toolCallReply('run_code', { code: 'print(1)' }), toolCallReply('run_code', { code: 'print(2)' }));
  const events = await readAgentSSE(await agentPost('agent-turns', { prompt: 'loop', max_turns: 2 }));
  assertWellFormed(events);
  const end = endOf(events);
  assert.equal(end.reason, 'max_turns');
  assert.equal(end.turns, 2);
  assert.equal(events.filter((e) => e.type === 'tool_end').length, 2);

  llm.push({ steps: [{ text: 'This answer is cut' }, { finish: 'length' }, { usage: { prompt: 5, completion: 100 } }] });
  const cut = await readAgentSSE(await agentPost('agent-turns', { prompt: 'say a lot' }));
  const cutEnd = endOf(cut);
  assert.equal(cutEnd.reason, 'length');
  assert.equal(cutEnd.text, 'This answer is cut');
  assertScriptUsed(llm);
});

test('a 429 before the first token is retried; a stream cut after it becomes an error event, then end', async () => {
  llm.push({ status: 429, retryAfter: 0 }, textReply('after a retry'));
  const ok = await readAgentSSE(await agentPost('agent-retry', { prompt: 'hi' }));
  assert.equal(endOf(ok).reason, 'completed');
  assert.equal(endOf(ok).text, 'after a retry');

  llm.push({ steps: [{ text: 'Half an ans' }, 'cut'] });
  const failed = await readAgentSSE(await agentPost('agent-retry', { prompt: 'hi again' }));
  assertWellFormed(failed);
  const err = failed.at(-2);
  assert.ok(err?.type === 'error', `error before end: ${JSON.stringify(failed.slice(-3))}`);
  assert.equal(err.code, 'LLM_ERROR');
  assert.equal(endOf(failed).reason, 'error');
  assert.equal(endOf(failed).text, 'Half an ans');

  // Failing on every attempt: the JSON answer is the error's status, with the fold.
  llm.push({ status: 500 }, { status: 502 }, { status: 503 });
  const res = await agentPost('agent-retry', { prompt: 'and again' }, 'application/json');
  assert.equal(res.status, 502);
  const body = (await res.json()) as { error: { code: string; message: string }; run: AgentRunView };
  assert.equal(body.error.code, 'LLM_UNAVAILABLE');
  assert.equal(body.run.reason, 'error');
  assertScriptUsed(llm);
});

test('cancel during the model\'s stream stops the model call; the session is free at once', async () => {
  llm.push({ steps: [{ text: 'Thinking' }, { hold: 'cancel-model' }, { text: ' more' }, { finish: 'stop' }] });
  const base = llm.requests.length;
  const res = await agentPost('agent-cancel', { prompt: 'think' });
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const reading = readAgentSSE(res);
  await llm.reached('cancel-model');
  // "Thinking" reached the server before the model held.
  await runReaches(runID, (v) => v.text === 'Thinking');
  const t0 = Date.now();
  const c = await fetch(`${server.url}/api/agent-runs/${runID}/cancel`, { method: 'POST' });
  assert.equal(c.status, 202);
  const events = await reading;
  const took = Date.now() - t0;
  assertWellFormed(events);
  const end = endOf(events);
  assert.equal(end.reason, 'cancelled');
  assert.equal(end.text, 'Thinking');
  assert.ok(took < 2000, `the stream ended ${took} ms after the cancel`);
  await waitFor('the model request to be aborted', 5000, async () => (llm.requests[base]?.aborted ? true : undefined));
  // Idempotent, and the session takes the next run.
  const again = await fetch(`${server.url}/api/agent-runs/${runID}/cancel`, { method: 'POST' });
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json(), { run_id: runID, state: 'finished', cancelled: false });
  llm.release('cancel-model');
  llm.push(textReply('Next.'));
  const next = await readAgentSSE(await agentPost('agent-cancel', { prompt: 'next' }));
  assert.equal(endOf(next).reason, 'completed');
  assertScriptUsed(llm);
});

test('cancel during a tool run kills its whole process tree', async () => {
  const code = 'import subprocess, time\np = subprocess.Popen(["sleep", "313.25"])\nprint("started", p.pid, flush=True)\ntime.sleep(300)';
  llm.push(toolCallReply('run_code', { code }, { id: 'call_sleep' }));
  const res = await agentPost('agent-cancel-tool', { prompt: 'sleep' });
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const events = await readAgentSSE(res, (ev) => ev.type === 'tool_output_delta');
  assert.ok(events.some((e) => e.type === 'tool_output_delta'));
  await waitFor('the sleep to run on the host', 10_000, async () => (pgrep('sleep 313.25') ? true : undefined));
  const t0 = Date.now();
  await fetch(`${server.url}/api/agent-runs/${runID}/cancel`, { method: 'POST' });
  const rest = await readAgentSSE(await fetch(`${server.url}/api/agent-runs/${runID}/events?from=${(events.at(-1)?.seq ?? 0) + 1}`));
  const took = Date.now() - t0;
  const toolEnd = rest.find((e) => e.type === 'tool_end');
  assert.ok(toolEnd?.type === 'tool_end');
  assert.equal(toolEnd.reason, 'cancelled');
  assert.equal(endOf(rest).reason, 'cancelled');
  assert.ok(took < 5000, `ended ${took} ms after the cancel`);
  assert.equal(pgrep('sleep 313.25'), false, 'the tool\'s child process is gone');
});

test('resume: a dropped SSE stream continues from Last-Event-ID with every event exactly once; a disconnect does not cancel', async () => {
  llm.push(toolCallReply('run_code', { code: 'import time\nfor i in range(4):\n    print("tick", i, flush=True)\n    time.sleep(0.4)' }, { id: 'call_ticks' }), textReply('Ticked.'));
  const ac = new AbortController();
  const res = await agentPost('agent-resume', { prompt: 'tick' }, 'text/event-stream', ac.signal);
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const head = await readAgentSSE(res, (ev) => ev.type === 'tool_output_delta');
  ac.abort();
  const last = head.at(-1)?.seq ?? 0;
  const tail = await readAgentSSE(await fetch(`${server.url}/api/agent-runs/${runID}/events`, { headers: { 'last-event-id': String(last) } }));
  const all = [...head, ...tail];
  assertWellFormed(all);
  assert.equal(endOf(all).reason, 'completed', 'the disconnect did not cancel the run');
  const replay = await readAgentSSE(await fetch(`${server.url}/api/agent-runs/${runID}/events?from=1`));
  assert.deepEqual(
    all.map((e) => e.seq),
    replay.map((e) => e.seq),
  );
  const noMore = await fetch(`${server.url}/api/agent-runs/${runID}/events?from=${all.length + 1}`);
  assert.equal(noMore.status, 204);
  assertScriptUsed(llm);
});

test('WebSocket: an agent message streams the run tagged with run_id; after a dropped socket, subscribe with run_id resumes exactly once', async () => {
  await postJSON(`${server.url}/api/sessions`, { id: 'agent-ws' });
  llm.push(toolCallReply('run_code', { code: 'print("over the socket")' }, { id: 'call_ws' }), { steps: [{ hold: 'ws' }, { text: 'Sent.' }, { finish: 'stop' }, { usage: { prompt: 3, completion: 2 } }] });
  const wsURL = `${server.url.replace('http', 'ws')}/api/sessions/agent-ws/ws`;
  const open = async (frames: Record<string, unknown>[]): Promise<WebSocket> => {
    const ws = new WebSocket(wsURL);
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
    await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
    return ws;
  };
  const frames1: Record<string, unknown>[] = [];
  const ws1 = await open(frames1);
  ws1.send(JSON.stringify({ type: 'agent', request_id: 'r1', prompt: 'say it' }));
  await waitFor('the tool to end on the socket', 20_000, async () => (frames1.some((f) => f['type'] === 'tool_end') ? true : undefined));
  await llm.reached('ws');
  // The connection breaks mid-run (no close frame); the run goes on.
  ws1.terminate();
  const accepted = frames1[0];
  assert.equal(accepted?.['type'], 'accepted');
  assert.equal(accepted?.['request_id'], 'r1');
  const runID = accepted?.['run_id'];
  assert.equal(typeof runID, 'string');
  const head = frames1.slice(1);
  assert.ok(head.every((f) => f['run_id'] === runID), 'every event names its run');
  llm.release('ws');

  const frames2: Record<string, unknown>[] = [];
  const ws2 = await open(frames2);
  const lastSeen = Number(head.at(-1)?.['seq']);
  ws2.send(JSON.stringify({ type: 'subscribe', run_id: runID, from: lastSeen + 1 }));
  await waitFor('the end on the new socket', 20_000, async () => (frames2.some((f) => f['type'] === 'end' && typeof f['seq'] === 'number') ? true : undefined));
  const parsed = [...head, ...frames2].map((f) => {
    const p = parseAgentEvent(f);
    assert.ok(p.ok, p.ok ? '' : p.message);
    return p.value;
  });
  assertWellFormed(parsed);
  assert.ok(parsed.some((e) => e.type === 'tool_output_delta' && e.text === 'over the socket\n'));
  assert.equal(endOf(parsed).text, 'Sent.');

  frames2.length = 0;
  ws2.send(JSON.stringify({ type: 'subscribe', run_id: runID, from: parsed.length + 1 }));
  await waitFor('the end message', 5000, async () => (frames2.length >= 1 ? true : undefined));
  assert.deepEqual(frames2[0], { type: 'end', run_id: runID, last_seq: parsed.length });
  const closed = new Promise<void>((r) => ws2.once('close', () => r()));
  ws2.close();
  await closed;
  assertScriptUsed(llm);
});

test('the API key reaches the model endpoint only: not the sandbox, the events or the logs', async () => {
  llm.push(toolCallReply('run_code', { code: 'import os\nprint(sorted(os.environ.items()))' }, { id: 'call_env' }), textReply('Printed.'));
  const events = await readAgentSSE(await agentPost('agent-key', { prompt: 'env' }));
  const output = events.filter((e) => e.type === 'tool_output_delta').map((e) => (e.type === 'tool_output_delta' ? e.text : '')).join('');
  assert.match(output, /PATH/, 'the environment was printed');
  assert.ok(!output.includes(KEY) && !output.includes('SECRET'), 'the key is not in the sandbox');
  const wire = JSON.stringify(events);
  assert.ok(!wire.includes(KEY), 'the key is not in any event');
  assert.ok(!server.logs().includes(KEY), 'the key is not in the server log');
  assert.ok(server.logs().includes('agent run finished'), 'the log has the runs (at info level)');
  assertScriptUsed(llm);
});

test('edges: one run per session, validation, unknown model, unknown run', async () => {
  llm.push({ steps: [{ hold: 'busy' }, { text: 'ok' }, { finish: 'stop' }] });
  const first = await agentPost('agent-busy', { prompt: 'wait' });
  await llm.reached('busy');
  const second = await agentPost('agent-busy', { prompt: 'again' }, 'application/json');
  assert.equal(second.status, 409);
  assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'SESSION_BUSY');
  const forget = await fetch(`${server.url}/api/sessions/agent-busy/agent`, { method: 'DELETE' });
  assert.equal(forget.status, 409, 'a conversation in use is not forgotten');
  llm.release('busy');
  assert.equal(endOf(await readAgentSSE(first)).reason, 'completed');

  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /prompt: expected a string \(it is required\)/],
    [{ prompt: 'x', max_turns: 0 }, /max_turns/],
    [{ prompt: 'x', tools: ['run_code', 'rm_rf'] }, /tools\[1\]/],
    [{ prompt: 'x', bogus: 1 }, /bogus: unknown field/],
    [{ prompt: 'x', model: 'gpt-99' }, /model: expected one of "gpt-4o-mini", "other-model"/],
  ];
  for (const [body, message] of cases) {
    const r = await agentPost('agent-edges', body, 'application/json');
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(((await r.json()) as { error: { message: string } }).error.message, message);
  }
  assert.equal((await fetch(`${server.url}/api/agent-runs/nope`)).status, 404);
  assert.equal((await fetch(`${server.url}/api/agent-runs/nope/cancel`, { method: 'POST' })).status, 404);
  assertScriptUsed(llm);
});

test('a model that stalls after its first token fails the run with LLM_ERROR once the idle bound passes', async () => {
  llm.push({ steps: [{ text: 'Start' }, 'stall'] });
  const t0 = Date.now();
  const events = await readAgentSSE(await agentPost('agent-stall', { prompt: 'stall' }));
  assertWellFormed(events);
  const err = events.at(-2);
  assert.ok(err?.type === 'error');
  assert.equal(err.code, 'LLM_ERROR');
  assert.match(err.error, /stalled|no byte|sent nothing/i);
  assert.ok(Date.now() - t0 >= 1900, 'it waited for the idle bound (SLUICE_LLM_TIMEOUT=2)');
  assertScriptUsed(llm);
});

test('on_disconnect "cancel": a dropped stream cancels the run; deleting the session cancels its run too', async () => {
  llm.push({ steps: [{ text: 'Working' }, { hold: 'drop' }, { text: '…' }, { finish: 'stop' }] });
  const ac = new AbortController();
  const res = await agentPost('agent-drop', { prompt: 'work', on_disconnect: 'cancel' }, 'text/event-stream', ac.signal);
  const runID = res.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  await readAgentSSE(res, (ev) => ev.type === 'text_delta');
  ac.abort();
  const view = await waitFor('the run to be cancelled', 10_000, async () => {
    const v = (await (await fetch(`${server.url}/api/agent-runs/${runID}`)).json()) as AgentRunView;
    return v.state === 'finished' ? v : undefined;
  });
  assert.equal(view.reason, 'cancelled');
  llm.release('drop');

  llm.push({ steps: [{ text: 'Busy' }, { hold: 'delete' }, { finish: 'stop' }] });
  const res2 = await agentPost('agent-drop', { prompt: 'again' });
  const runID2 = res2.headers.get('sluice-agent-run-id');
  const reading = readAgentSSE(res2);
  await llm.reached('delete');
  assert.equal((await fetch(`${server.url}/api/sessions/agent-drop`, { method: 'DELETE' })).status, 204);
  const events = await reading;
  assert.equal(endOf(events).reason, 'cancelled');
  assert.ok(runID2);
  llm.release('delete');
  assertScriptUsed(llm);
});

test('per-tenant cap on concurrent agent runs', async () => {
  const keyed = await startServer({
    SLUICE_LLM_BASE_URL: llm.baseURL,
    SLUICE_LLM_MODEL: MODEL,
    SLUICE_API_KEYS: 'alice:alice-key-0123456789abcdef,bob:bob-key-0123456789abcdef00',
    SLUICE_MAX_AGENT_RUNS_PER_TENANT: '1',
  });
  try {
    const post = (key: string, session: string): Promise<Response> =>
      fetch(`${keyed.url}/api/sessions/${session}/agent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
        body: '{"prompt":"hold"}',
      });
    llm.push({ steps: [{ hold: 'tenant' }, { text: 'a' }, { finish: 'stop' }] }, textReply('bob'));
    const alice1 = await post('alice-key-0123456789abcdef', 'one');
    await llm.reached('tenant');
    const alice2 = await post('alice-key-0123456789abcdef', 'two');
    assert.equal(alice2.status, 429);
    assert.match(((await alice2.json()) as { error: { message: string } }).error.message, /SLUICE_MAX_AGENT_RUNS_PER_TENANT/);
    const bob = await post('bob-key-0123456789abcdef00', 'one');
    assert.equal(endOf(await readAgentSSE(bob)).reason, 'completed', 'another tenant is not held back');
    llm.release('tenant');
    assert.equal(endOf(await readAgentSSE(alice1)).reason, 'completed');
    assertScriptUsed(llm);
  } finally {
    await keyed.stop();
  }
});

test('a call the model was still writing when its reply was cut, failed or cancelled still gets tool_start and tool_end', async () => {
  const partial = [{ text: 'Running:' }, { toolCall: { index: 0, id: 'call_partial', name: 'run_code' } }, { args: '{"code": "print(', index: 0 }] as const;
  const closed = (events: readonly AgentEvent[], reason: string): void => {
    assertWellFormed(events);
    const start = events.findIndex((e) => e.type === 'tool_start' && e.tool_id === 'call_partial');
    const end = events.findIndex((e) => e.type === 'tool_end' && e.tool_id === 'call_partial');
    assert.ok(start > 0 && end > start, `tool_start then tool_end for the unfinished call: ${types(events).join(' ')}`);
    const ev = events[end];
    assert.ok(ev?.type === 'tool_end');
    assert.equal(ev.reason, reason);
    assert.equal(ev.exit_code, null);
    const turnEnd = events.findIndex((e) => e.type === 'turn_end');
    assert.ok(turnEnd < start, 'after turn_end, like calls that run');
  };

  // Cut by the model's output limit.
  llm.push({ steps: [...partial, { finish: 'length' }, { usage: { prompt: 5, completion: 50 } }] });
  const cut = await readAgentSSE(await agentPost('agent-partial', { prompt: 'a' }));
  closed(cut, 'invalid');
  assert.equal(endOf(cut).reason, 'length');

  // The model's stream breaks.
  llm.push({ steps: [...partial, 'cut'] });
  const broken = await readAgentSSE(await agentPost('agent-partial', { prompt: 'b' }));
  closed(broken, 'error');
  assert.equal(endOf(broken).reason, 'error');

  // Cancelled while the model writes the call.
  llm.push({ steps: [...partial, { hold: 'partial' }, { args: '1)"}', index: 0 }, { finish: 'tool_calls' }] });
  const res = await agentPost('agent-partial', { prompt: 'c' });
  const runID = res.headers.get('sluice-agent-run-id');
  const reading = readAgentSSE(res);
  await llm.reached('partial');
  // The server has taken in the call's first arguments before the cancel (the model wrote them before it held).
  await runReaches(String(runID), (v) => v.tool_calls.length > 0);
  await fetch(`${server.url}/api/agent-runs/${runID}/cancel`, { method: 'POST' });
  const cancelled = await reading;
  closed(cancelled, 'cancelled');
  assert.equal(endOf(cancelled).reason, 'cancelled');
  llm.release('partial');

  // The conversation still alternates: the next prompt follows an assistant message.
  const base = llm.requests.length;
  llm.push(textReply('Fine.'));
  await readAgentSSE(await agentPost('agent-partial', { prompt: 'd' }));
  const roles = llm.requests[base]?.body.messages.map((m) => m.role) ?? [];
  for (let i = 1; i < roles.length; i++) assert.ok(!(roles[i] === 'user' && roles[i - 1] === 'user'), `no two user messages in a row: ${roles.join(',')}`);
  assert.deepEqual(roles, ['system', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']);
  assertScriptUsed(llm);
});

test('without a model endpoint, agent requests answer LLM_UNAVAILABLE (502)', async () => {
  const bare = await startServer();
  try {
    const r = await fetch(`${bare.url}/api/sessions/s/agent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"hi"}' });
    assert.equal(r.status, 502);
    const body = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'LLM_UNAVAILABLE');
    assert.match(body.error.message, /SLUICE_LLM_BASE_URL/);
  } finally {
    await bare.stop();
  }
});

/** Polls the run's view until `ok` holds (the server has taken in what the model sent). */
function runReaches(runID: string, ok: (v: AgentRunView) => boolean): Promise<AgentRunView> {
  return waitFor(`run ${runID} to reach the expected state`, 10_000, async () => {
    const v = (await (await fetch(`${server.url}/api/agent-runs/${runID}`)).json()) as AgentRunView;
    return ok(v) ? v : undefined;
  });
}

function pgrep(pattern: string): boolean {
  try {
    execFileSync('pgrep', ['-f', pattern]);
    return true;
  } catch {
    return false;
  }
}
