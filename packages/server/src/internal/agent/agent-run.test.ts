import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '@sluice/protocol';
import { AgentRun, type ChatFn } from './agent-run.js';
import { trimConversation } from './agent-runs.js';
import type { ChatDelta } from './llm/chat-delta.js';
import type { ChatMessage } from './llm/chat-request.js';
import type { StreamChatOptions } from './llm/chat-stream.js';
import { LLMError } from './llm/llm-error.js';
import type { ToolHost, ToolOutcome } from './session-tools.js';

type Turn = ChatDelta[] | ((signal: AbortSignal) => AsyncIterable<ChatDelta>);

/** A model that answers each call with the next scripted turn, recording what it was sent. */
function scriptedChat(turns: Turn[]): { chat: ChatFn; sent: ChatMessage[][] } {
  const sent: ChatMessage[][] = [];
  const chat: ChatFn = (options: StreamChatOptions, signal: AbortSignal) => {
    sent.push(options.messages.map((m) => ({ ...m })));
    const turn = turns.shift();
    if (turn === undefined) throw new Error('no scripted turn left');
    if (typeof turn === 'function') return turn(signal);
    return (async function* () {
      yield* turn;
    })();
  };
  return { chat, sent };
}

function call(index: number, id: string, name: string, args: string): ChatDelta[] {
  return [
    { type: 'tool_call', index, id, name, arguments: '' },
    { type: 'tool_call', index, arguments: args },
  ];
}

const usage = (p: number, c: number): ChatDelta => ({ type: 'usage', usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } });

function newRun(chat: ChatFn, toolHost: ToolHost, conversation: ChatMessage[] = [], maxTurns = 5): AgentRun {
  return new AgentRun({
    id: 'run1',
    sessionID: 's1',
    owner: null,
    prompt: 'go',
    system: 'sys',
    model: 'm',
    maxTurns,
    tools: ['run_code', 'read_file', 'write_file', 'list_files'],
    languages: ['python'],
    defaultLanguage: 'python',
    conversation,
    llm: { baseURL: 'http://127.0.0.1:1/v1' },
    chat,
    toolHost,
    maxLogBytes: 1024 * 1024,
  });
}

function events(run: AgentRun): AgentEvent[] {
  return [...run.log.events()];
}

const okHost: ToolHost = {
  run: async (c) => ({ output: `ran ${c.tool}`, exitCode: 0, reason: 'exited' }),
};

test('a completed run: events in order, tokens summed, the conversation extended', async () => {
  const { chat, sent } = scriptedChat([
    [{ type: 'text', text: 'Let me.' }, ...call(0, 'c1', 'run_code', '{"code":"1"}'), { type: 'finish', reason: 'tool_calls', raw: 'tool_calls' }, usage(10, 5)],
    [{ type: 'text', text: 'Done.' }, { type: 'finish', reason: 'stop', raw: 'stop' }, usage(20, 2)],
  ]);
  const conv: ChatMessage[] = [];
  const run = newRun(chat, okHost, conv);
  await run.run();
  const evs = events(run);
  assert.deepEqual(
    evs.map((e) => e.type),
    ['agent_start', 'turn_start', 'text_delta', 'tool_input_delta', 'tool_input_delta', 'turn_end', 'tool_start', 'tool_end', 'turn_start', 'text_delta', 'turn_end', 'end'],
  );
  const end = evs.at(-1);
  assert.ok(end?.type === 'end');
  assert.deepEqual([end.reason, end.text, end.turns, end.total_tokens], ['completed', 'Done.', 2, 37]);
  assert.deepEqual(
    conv.map((m) => m.role),
    ['system', 'user', 'assistant', 'tool', 'assistant'],
  );
  assert.equal(sent[1]?.at(-1)?.role, 'tool');
});

test('cancel during a tool answers every call of the turn, so the conversation stays valid', async () => {
  let started!: () => void;
  const toolStarted = new Promise<void>((r) => (started = r));
  const host: ToolHost = {
    run: (_c, _emit, signal) =>
      new Promise<ToolOutcome>((resolve) => {
        started();
        signal.addEventListener('abort', () => resolve({ output: 'cancelled', exitCode: null, reason: 'cancelled' }), { once: true });
      }),
  };
  const { chat } = scriptedChat([[...call(0, 'a', 'run_code', '{"code":"x"}'), ...call(1, 'b', 'list_files', '{}'), { type: 'finish', reason: 'tool_calls', raw: 'tool_calls' }]]);
  const conv: ChatMessage[] = [];
  const run = newRun(chat, host, conv);
  const done = run.run();
  await toolStarted;
  run.cancel();
  run.cancel();
  await done;
  const evs = events(run);
  const ends = evs.filter((e) => e.type === 'tool_end');
  assert.deepEqual(
    ends.map((e) => (e.type === 'tool_end' ? [e.tool_id, e.reason] : [])),
    [
      ['a', 'cancelled'],
      ['b', 'cancelled'],
    ],
  );
  const last = evs.at(-1);
  assert.ok(last?.type === 'end' && last.reason === 'cancelled');
  const tools = conv.filter((m): m is Extract<ChatMessage, { role: 'tool' }> => m.role === 'tool').map((m) => m.tool_call_id);
  assert.deepEqual(tools, ['a', 'b']);
});

test('cancel during the model stream keeps the text said so far, as text', async () => {
  let reached!: () => void;
  const inStream = new Promise<void>((r) => (reached = r));
  const { chat } = scriptedChat([
    (signal) =>
      (async function* (): AsyncGenerator<ChatDelta> {
        yield { type: 'text', text: 'Partial' };
        reached();
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
      })(),
  ]);
  const conv: ChatMessage[] = [];
  const run = newRun(chat, okHost, conv);
  const done = run.run();
  await inStream;
  run.cancel();
  await done;
  const last = events(run).at(-1);
  assert.ok(last?.type === 'end');
  assert.equal(last.reason, 'cancelled');
  assert.equal(last.text, 'Partial');
  assert.deepEqual(conv.at(-1), { role: 'assistant', content: 'Partial' });
});

test('a model failure is an error event then end; a tool host failure is the model\'s tool error', async () => {
  const failing: ChatFn = () => {
    throw new LLMError('LLM_UNAVAILABLE', 'the model endpoint failed: 503');
  };
  const run = newRun(failing, okHost);
  await run.run();
  const evs = events(run);
  assert.deepEqual(evs.slice(-2).map((e) => e.type), ['error', 'end']);
  const err = evs.at(-2);
  assert.ok(err?.type === 'error' && err.code === 'LLM_UNAVAILABLE');

  const broken: ToolHost = {
    run: () => Promise.reject(new Error('disk on fire')),
  };
  const { chat, sent } = scriptedChat([[...call(0, 'c', 'read_file', '{"path":"a"}'), { type: 'finish', reason: 'tool_calls', raw: 'tool_calls' }], [{ type: 'text', text: 'ok' }]]);
  const run2 = newRun(chat, broken);
  await run2.run();
  assert.match(String(sent[1]?.at(-1)?.content), /the tool failed: disk on fire/);
  const end = events(run2).at(-1);
  assert.ok(end?.type === 'end' && end.reason === 'completed');
});

test('trimConversation drops whole exchanges, oldest first, keeping the system message', () => {
  const conv: ChatMessage[] = [
    { role: 'system', content: 's' },
    { role: 'user', content: 'u1'.repeat(50) },
    { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'run_code', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 't', content: 'x'.repeat(100) },
    { role: 'user', content: 'u2' },
    { role: 'assistant', content: 'a2' },
  ];
  trimConversation(conv, 50);
  assert.deepEqual(
    conv.map((m) => m.role),
    ['system', 'user', 'assistant'],
  );
  assert.equal(conv[1]?.content, 'u2');
});
