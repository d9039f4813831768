/**
 * The AG-UI endpoint end to end (docs/ag-ui.md): a real Sluice server with real sandboxes, the
 * scripted OpenAI-compatible model, and the official AG-UI client (`HttpAgent` from
 * @ag-ui/client) as the front end, with no decoder of ours in between. Then a resume: a raw
 * stream dropped in the middle of a tool call, picked up with `Last-Event-ID`, checked with
 * AG-UI's own verifier.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpAgent, verifyEvents, type BaseEvent, type Message } from '@ag-ui/client';
import { from, lastValueFrom, toArray } from 'rxjs';
import { decodeSSEStream } from '@sluice/protocol';
import { waitFor } from './helpers/host.js';
import { assertScriptUsed, startScriptedLLM, textReply, toolCallReply, type ScriptedLLM } from './helpers/scripted-llm.js';
import { startServer, type TestServer } from './helpers/server.js';

const MODEL = 'gpt-4o-mini';

let llm: ScriptedLLM;
let server: TestServer;
before(async () => {
  llm = await startScriptedLLM();
  server = await startServer({ SLUICE_LLM_BASE_URL: llm.baseURL, SLUICE_LLM_API_KEY: 'sk-test-agui', SLUICE_LLM_MODEL: MODEL, SLUICE_HEARTBEAT: '1' });
});
after(async () => {
  await server?.stop();
  await llm?.close();
});

/** Event types with runs of the same entry collapsed (streamed deltas come in any number). */
function shape(events: readonly BaseEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const name = e.type === 'CUSTOM' ? `CUSTOM ${String((e as { name?: unknown }).name)}` : e.type;
    if (out.at(-1) !== name) out.push(name);
  }
  return out;
}

function field(e: BaseEvent | undefined, key: string): unknown {
  return e === undefined ? undefined : (e as unknown as Record<string, unknown>)[key];
}

/** Resolves with AG-UI's verifier's complaint about `events`, or null when it accepts them. */
async function verifierProblem(events: readonly BaseEvent[]): Promise<string | null> {
  try {
    await lastValueFrom(from(events).pipe(verifyEvents(), toArray()));
    return null;
  } catch (err: unknown) {
    return err instanceof Error ? err.message : String(err);
  }
}

test('the official AG-UI HttpAgent drives a Sluice agent: text, a run_code call with its args and live output, its result, the answer', async () => {
  const code = 'for i in range(3):\n    print("line", i)';
  llm.push(toolCallReply('run_code', { code, language: 'python' }, { id: 'call_py', text: 'Let me run that.' }), textReply('It printed three lines.'));
  const session = 'agui-basic';
  const agent = new HttpAgent({
    url: `${server.url}/api/sessions/${session}/ag-ui`,
    threadId: session,
    initialMessages: [{ id: 'u1', role: 'user', content: 'Print three lines with Python.' }],
  });
  const events: BaseEvent[] = [];
  const { result } = await agent.runAgent({}, { onEvent: ({ event }) => void events.push(event) });

  assert.deepEqual(shape(events), [
    'RUN_STARTED',
    'STEP_STARTED',
    'TEXT_MESSAGE_START',
    'TEXT_MESSAGE_CONTENT',
    'TEXT_MESSAGE_END',
    'TOOL_CALL_START',
    'TOOL_CALL_ARGS',
    'TOOL_CALL_END',
    // The model call (turn 1) ends once the model has written the call; the tool runs after it.
    'STEP_FINISHED',
    'CUSTOM sluice.tool_output_delta',
    'TOOL_CALL_RESULT',
    'CUSTOM sluice.tool_end',
    'STEP_STARTED',
    'TEXT_MESSAGE_START',
    'TEXT_MESSAGE_CONTENT',
    'TEXT_MESSAGE_END',
    'STEP_FINISHED',
    'RUN_FINISHED',
  ]);
  const started = events[0];
  assert.equal(field(started, 'threadId'), session, 'the thread is the Sluice session');
  const runID = field(started, 'runId');
  assert.equal(typeof runID, 'string');
  assert.equal(field(events.at(-1), 'runId'), runID);

  const of = (type: string): BaseEvent[] => events.filter((e) => e.type === type);
  assert.deepEqual(of('STEP_STARTED').map((e) => field(e, 'stepName')), ['turn 1', 'turn 2']);
  const textOf = (messageId: unknown): string => of('TEXT_MESSAGE_CONTENT').filter((e) => field(e, 'messageId') === messageId).map((e) => String(field(e, 'delta'))).join('');
  const messages = of('TEXT_MESSAGE_START').map((e) => field(e, 'messageId'));
  assert.deepEqual(messages.map(textOf), ['Let me run that.', 'It printed three lines.']);

  const toolStart = of('TOOL_CALL_START')[0];
  assert.equal(field(toolStart, 'toolCallId'), 'call_py');
  assert.equal(field(toolStart, 'toolCallName'), 'run_code');
  assert.equal(field(toolStart, 'parentMessageId'), messages[0], 'the call belongs to the turn’s message');
  const args = of('TOOL_CALL_ARGS').map((e) => String(field(e, 'delta')));
  assert.ok(args.length > 1, 'the args arrive in pieces, as the model streams them');
  assert.deepEqual(JSON.parse(args.join('')), { code, language: 'python' });

  const live = of('CUSTOM')
    .filter((e) => field(e, 'name') === 'sluice.tool_output_delta')
    .map((e) => field(e, 'value') as { text: string; stream: string; tool_id: string });
  assert.equal(live.map((v) => v.text).join(''), 'line 0\nline 1\nline 2\n');
  assert.ok(live.every((v) => v.stream === 'stdout' && v.tool_id === 'call_py'));
  const toolResult = of('TOOL_CALL_RESULT')[0];
  assert.equal(field(toolResult, 'toolCallId'), 'call_py');
  assert.equal(field(toolResult, 'role'), 'tool');
  assert.match(String(field(toolResult, 'content')), /line 0\nline 1\nline 2/);
  const toolEnd = of('CUSTOM').find((e) => field(e, 'name') === 'sluice.tool_end');
  assert.deepEqual({ ...(field(toolEnd, 'value') as Record<string, unknown>), seq: 0, ts: 0, execution_id: '' }, { seq: 0, ts: 0, tool_id: 'call_py', tool_name: 'run_code', exit_code: 0, reason: 'exited', execution_id: '' });

  assert.deepEqual(result, { reason: 'completed', text: 'It printed three lines.', total_tokens: 65, turns: 2 }, 'runAgent resolves with RUN_FINISHED’s result');
  const usage = field(events.at(-1), 'usage');
  assert.deepEqual(usage, [{ model: MODEL, inputTokens: 50, outputTokens: 15, totalTokens: 65 }]);

  // The client assembled the conversation from the events alone: no glue.
  const assistant = agent.messages.find((m): m is Extract<Message, { role: 'assistant' }> => m.role === 'assistant' && (m.toolCalls?.length ?? 0) > 0);
  assert.equal(assistant?.toolCalls?.[0]?.function.name, 'run_code');
  assert.deepEqual(JSON.parse(assistant?.toolCalls?.[0]?.function.arguments ?? 'null'), { code, language: 'python' });
  const toolMessage = agent.messages.find((m) => m.role === 'tool');
  assert.match(String(toolMessage?.content), /line 2/);
  assert.equal(agent.messages.at(-1)?.content, 'It printed three lines.');

  // And the model was given the tool's result under the call's id.
  const second = llm.requests[1]?.body.messages.find((m) => m.role === 'tool');
  assert.equal(second?.tool_call_id, 'call_py');
  assert.match(second?.content ?? '', /line 2/);
  assertScriptUsed(llm);
});

test('a bad RunAgentInput is refused before any run starts, with the field named', async () => {
  const res = await fetch(`${server.url}/api/sessions/agui-bad/ag-ui`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ threadId: 't', runId: 'r', messages: [{ id: 'a', role: 'assistant', content: 'hi' }] }),
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'INVALID_REQUEST');
  assert.match(body.error.message, /^messages: expected at least one message with role "user"/);
});

interface Frame {
  id: string;
  event: BaseEvent;
}

/** Reads AG-UI SSE frames (the protocol package's decoder) until `stop` says so or the stream ends. */
async function readFrames(res: Response, stop?: (f: Frame) => boolean): Promise<Frame[]> {
  assert.equal(res.status, 200, `expected a stream, got ${res.status}`);
  assert.ok(res.body);
  const ac = new AbortController();
  const out: Frame[] = [];
  try {
    for await (const msg of decodeSSEStream(res.body, ac.signal)) {
      assert.equal(msg.event, 'message', 'AG-UI frames carry no event name, as @ag-ui/encoder writes them');
      const frame = { id: msg.id, event: JSON.parse(msg.data) as BaseEvent };
      out.push(frame);
      if (stop?.(frame)) {
        ac.abort();
        break;
      }
    }
  } catch (err: unknown) {
    if (!ac.signal.aborted) throw err;
  }
  return out;
}

test('a stream dropped mid tool call resumes with Last-Event-ID: RUN_STARTED first, the step and tool call re-opened, nothing lost', async () => {
  const session = 'agui-resume';
  llm.push(
    {
      steps: [
        { text: 'Running it.' },
        { toolCall: { index: 0, id: 'call_r', name: 'run_code' } },
        { args: '{"code":"print(', index: 0 },
        { hold: 'agui-mid-args' },
        { args: "'resumed ok')\"}", index: 0 },
        { finish: 'tool_calls' },
        { usage: { prompt: 30, completion: 10 } },
      ],
    },
    textReply('Done.'),
  );
  const first = await fetch(`${server.url}/api/sessions/${session}/ag-ui`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ threadId: session, runId: 'client-run', messages: [{ id: 'u', role: 'user', content: 'Print something.' }] }),
  });
  const runID = first.headers.get('sluice-agent-run-id');
  assert.ok(runID);
  const before = await readFrames(first, (f) => f.event.type === 'TOOL_CALL_ARGS');
  await llm.reached('agui-mid-args');
  const lastID = before.at(-1)?.id ?? '';
  assert.match(lastID, /^\d+$/, 'the frames carry the Sluice seq as their id');

  const resumed = await fetch(`${server.url}/api/agent-runs/${runID}/ag-ui`, { headers: { accept: 'text/event-stream', 'last-event-id': lastID } });
  llm.release('agui-mid-args');
  const after = await readFrames(resumed);
  const events = after.map((f) => f.event);

  assert.deepEqual(
    events.slice(0, 3).map((e) => e.type),
    ['RUN_STARTED', 'STEP_STARTED', 'TOOL_CALL_START'],
  );
  assert.equal(field(events[0], 'runId'), runID, 'the resumed run is the same run');
  assert.equal(field(events[1], 'stepName'), 'turn 1');
  const reopened = events[2];
  assert.equal(field(reopened, 'toolCallId'), 'call_r');
  assert.equal(field(reopened, 'toolCallName'), 'run_code');
  const firstStart = before.find((f) => f.event.type === 'TOOL_CALL_START')?.event;
  assert.equal(field(reopened, 'parentMessageId'), field(firstStart, 'parentMessageId'));
  assert.equal(events.at(-1)?.type, 'RUN_FINISHED');
  assert.ok(after.filter((f) => f.id !== '' && f.id !== lastID).every((f) => Number(f.id) > Number(lastID)), 'ids go on from the last one seen');

  // The resumed stream stands on its own for AG-UI's verifier (a new response is a new run to it).
  assert.equal(await verifierProblem(events), null);
  // And what was read before plus what came after, without the re-opening prelude, is one whole
  // valid run: every piece exactly once.
  const whole = [...before.map((f) => f.event), ...events.slice(3)];
  assert.equal(await verifierProblem(whole), null);
  const args = whole.filter((e) => e.type === 'TOOL_CALL_ARGS').map((e) => String(field(e, 'delta')));
  assert.deepEqual(JSON.parse(args.join('')), { code: "print('resumed ok')" });
  const output = whole.filter((e) => e.type === 'CUSTOM' && field(e, 'name') === 'sluice.tool_output_delta');
  assert.equal(output.map((e) => (field(e, 'value') as { text: string }).text).join(''), 'resumed ok\n');
  const text = whole.filter((e) => e.type === 'TEXT_MESSAGE_CONTENT').map((e) => String(field(e, 'delta')));
  assert.deepEqual(text, ['Running it.', 'Done.']);
  assertScriptUsed(llm);
});

/** Polls the run's view until it has finished; returns its end reason. */
async function finishedReason(runID: string): Promise<string> {
  const view = await waitFor('the agent run to finish', 30_000, async () => {
    const v = (await (await fetch(`${server.url}/api/agent-runs/${runID}`)).json()) as { state: string; reason: string | null };
    return v.state === 'finished' ? v : undefined;
  });
  return String(view.reason);
}

test('HttpAgent.abortRun() cancels the run only when the input asked for on_disconnect: "cancel"; otherwise the run goes on', async () => {
  for (const [session, onDisconnect, expected] of [
    ['agui-abort-cancel', 'cancel', 'cancelled'],
    ['agui-abort-continue', undefined, 'completed'],
  ] as const) {
    const hold = `${session}-hold`;
    llm.push({ steps: [{ text: 'Thinking' }, { hold }, { text: ' done.' }, { finish: 'stop' }, { usage: { prompt: 5, completion: 2 } }] });
    const agent = new HttpAgent({ url: `${server.url}/api/sessions/${session}/ag-ui`, threadId: session, initialMessages: [{ id: 'u', role: 'user', content: 'Think.' }] });
    let runID = '';
    const running = agent.runAgent(
      { forwardedProps: onDisconnect === undefined ? {} : { on_disconnect: onDisconnect } },
      {
        onRunStartedEvent: ({ event }) => void (runID = event.runId),
        onTextMessageContentEvent: () => agent.abortRun(),
      },
    );
    // An aborted run settles either way (AbortError is swallowed by the client); only the server's side matters here.
    await running.catch(() => undefined);
    await llm.reached(hold);
    assert.ok(runID, 'RUN_STARTED named the run');
    if (expected === 'cancelled') {
      // The model is still held: the run can only end because the server saw the client go. Released
      // only afterwards, so a server that has not noticed the disconnect yet cannot complete it.
      assert.equal(await finishedReason(runID), expected, `on_disconnect ${String(onDisconnect)}`);
      llm.release(hold);
    } else {
      llm.release(hold);
      assert.equal(await finishedReason(runID), expected, `on_disconnect ${String(onDisconnect)}`);
    }
  }
  assertScriptUsed(llm);
});
