import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNever, type AgentEvent } from '@sluice/protocol';
import type { AGUIEvent } from './agui-events.js';
import { AGUIMapper } from './agui-mapper.js';
import { IDS, TOOL_RUN, USAGE, aguiProblem, assertAGUIValid, logOf } from './agui.test-helper.js';

function mapAll(events: readonly AgentEvent[]): AGUIEvent[] {
  const m = new AGUIMapper(IDS);
  return events.flatMap((e) => m.map(e));
}

/** `type` plus the one field that tells events apart, for compact expectations. */
function brief(events: readonly AGUIEvent[]): string[] {
  return events.map((e) => {
    switch (e.type) {
      case 'RUN_STARTED':
      case 'RUN_FINISHED':
        return e.type;
      case 'RUN_ERROR':
        return `${e.type} ${e.code}`;
      case 'STEP_STARTED':
      case 'STEP_FINISHED':
        return `${e.type} ${e.stepName}`;
      case 'TEXT_MESSAGE_START':
      case 'TEXT_MESSAGE_END':
        return `${e.type} ${e.messageId}`;
      case 'TEXT_MESSAGE_CONTENT':
        return `${e.type} ${e.delta}`;
      case 'TOOL_CALL_START':
        return `${e.type} ${e.toolCallId} ${e.toolCallName}${e.parentMessageId === undefined ? '' : ` <${e.parentMessageId}`}`;
      case 'TOOL_CALL_ARGS':
        return `${e.type} ${e.delta}`;
      case 'TOOL_CALL_END':
        return `${e.type} ${e.toolCallId}`;
      case 'TOOL_CALL_RESULT':
        return `${e.type} ${e.toolCallId} ${e.content}`;
      case 'CUSTOM':
        return `${e.type} ${e.name}`;
      default:
        return assertNever(e, 'AG-UI event');
    }
  });
}

test('a run with text, a streamed tool call (ended with the model call, run between turns) and an answer maps to the AG-UI sequence, and AG-UI’s verifier accepts it', async () => {
  const out = mapAll(logOf(TOOL_RUN));
  assert.deepEqual(brief(out), [
    'RUN_STARTED',
    'STEP_STARTED turn 1',
    'TEXT_MESSAGE_START run1-turn1',
    'TEXT_MESSAGE_CONTENT Let me ',
    'TEXT_MESSAGE_CONTENT compute.',
    'TEXT_MESSAGE_END run1-turn1',
    'TOOL_CALL_START call_1 run_code <run1-turn1',
    'TOOL_CALL_ARGS {"code":',
    'TOOL_CALL_ARGS "print(1)"}',
    'TOOL_CALL_END call_1',
    'STEP_FINISHED turn 1',
    'CUSTOM sluice.tool_output_delta',
    'CUSTOM sluice.tool_progress',
    'CUSTOM sluice.tool_result',
    'TOOL_CALL_RESULT call_1 stdout:\n1\n',
    'CUSTOM sluice.tool_end',
    'STEP_STARTED turn 2',
    'TEXT_MESSAGE_START run1-turn2',
    'TEXT_MESSAGE_CONTENT It is 1.',
    'TEXT_MESSAGE_END run1-turn2',
    'STEP_FINISHED turn 2',
    'RUN_FINISHED',
  ]);
  await assertAGUIValid(out);
});

test('the ids and fields: thread = session, run = agent run, timestamps = the Sluice ts, the result message and usage', () => {
  const out = mapAll(logOf(TOOL_RUN));
  assert.deepEqual(out[0], { type: 'RUN_STARTED', threadId: 'sess1', runId: 'run1', timestamp: 1001 });
  const result = out.find((e) => e.type === 'TOOL_CALL_RESULT');
  assert.deepEqual(result, { type: 'TOOL_CALL_RESULT', messageId: 'run1-call_1-result', toolCallId: 'call_1', content: 'stdout:\n1\n', role: 'tool', timestamp: 1013 });
  const output = out.find((e) => e.type === 'CUSTOM' && e.name === 'sluice.tool_output_delta');
  assert.deepEqual(output, {
    type: 'CUSTOM',
    name: 'sluice.tool_output_delta',
    value: { seq: 10, ts: 1010, tool_id: 'call_1', tool_name: 'run_code', stream: 'stdout', text: '1\n', execution_id: 'ex1' },
    timestamp: 1010,
  });
  const toolEnd = out.find((e) => e.type === 'CUSTOM' && e.name === 'sluice.tool_end');
  assert.deepEqual(toolEnd?.type === 'CUSTOM' ? toolEnd.value : null, { seq: 13, ts: 1013, tool_id: 'call_1', tool_name: 'run_code', exit_code: 0, reason: 'exited', execution_id: 'ex1' });
  assert.deepEqual(out.at(-1), {
    type: 'RUN_FINISHED',
    threadId: 'sess1',
    runId: 'run1',
    result: { reason: 'completed', text: 'It is 1.', total_tokens: 30, turns: 2 },
    usage: [{ model: 'gpt-test', inputTokens: 20, outputTokens: 10, totalTokens: 30 }],
    timestamp: 1017,
  });
});

test('empty text deltas send nothing: no empty TEXT_MESSAGE_CONTENT, no message opened for them', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'text_delta', text: '' },
      { type: 'tool_start', tool_id: 'c', tool_name: 'list_files', input: {} },
      { type: 'text_delta', text: '' },
      { type: 'tool_end', tool_id: 'c', tool_name: 'list_files', tool_output: 'a.txt', exit_code: 0, reason: 'exited' },
      { type: 'turn_end', turn: 1, usage: USAGE, total_tokens: 15 },
      { type: 'end', text: '', total_tokens: 15, usage: USAGE, turns: 1, reason: 'completed' },
    ]),
  );
  assert.ok(!out.some((e) => e.type === 'TEXT_MESSAGE_START' || e.type === 'TEXT_MESSAGE_CONTENT'));
  await assertAGUIValid(out);
});

test('a tool call without input deltas sends START and the JSON of its input as ARGS at tool_start; no parent without text', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'tool_start', tool_id: 'c', tool_name: 'read_file', input: { path: 'a.txt' } },
      { type: 'tool_end', tool_id: 'c', tool_name: 'read_file', tool_output: 'hello', exit_code: 0, reason: 'exited' },
      { type: 'turn_end', turn: 1, usage: USAGE, total_tokens: 15 },
      { type: 'end', text: '', total_tokens: 15, usage: USAGE, turns: 1, reason: 'max_turns' },
    ]),
  );
  assert.deepEqual(brief(out).slice(2, 6), ['TOOL_CALL_START c read_file', 'TOOL_CALL_ARGS {"path":"a.txt"}', 'TOOL_CALL_END c', 'TOOL_CALL_RESULT c hello']);
  const finished = out.at(-1);
  assert.equal(finished?.type === 'RUN_FINISHED' ? finished.result.reason : null, 'max_turns');
  await assertAGUIValid(out);
});

test('several tool calls in one turn: each started, its args, ended and answered; all children of the turn’s message', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'text_delta', text: 'Two things.' },
      { type: 'tool_input_delta', tool_id: 'a', tool_name: 'read_file', text: '{"path":"x"}' },
      { type: 'tool_input_delta', tool_id: 'b', tool_name: 'list_files', text: '{}' },
      { type: 'tool_start', tool_id: 'a', tool_name: 'read_file', input: { path: 'x' } },
      { type: 'tool_end', tool_id: 'a', tool_name: 'read_file', tool_output: 'X', exit_code: 0, reason: 'exited' },
      { type: 'tool_start', tool_id: 'b', tool_name: 'list_files', input: {} },
      { type: 'tool_end', tool_id: 'b', tool_name: 'list_files', tool_output: 'x', exit_code: 0, reason: 'exited' },
      { type: 'turn_end', turn: 1, usage: USAGE, total_tokens: 15 },
      { type: 'end', text: '', total_tokens: 15, usage: USAGE, turns: 1, reason: 'length' },
    ]),
  );
  assert.deepEqual(brief(out).slice(2, 15), [
    'TEXT_MESSAGE_START run1-turn1',
    'TEXT_MESSAGE_CONTENT Two things.',
    'TEXT_MESSAGE_END run1-turn1',
    'TOOL_CALL_START a read_file <run1-turn1',
    'TOOL_CALL_ARGS {"path":"x"}',
    'TOOL_CALL_START b list_files <run1-turn1',
    'TOOL_CALL_ARGS {}',
    'TOOL_CALL_END a',
    'TOOL_CALL_RESULT a X',
    'CUSTOM sluice.tool_end',
    'TOOL_CALL_END b',
    'TOOL_CALL_RESULT b x',
    'CUSTOM sluice.tool_end',
  ]);
  await assertAGUIValid(out);
});

test('text after a tool call in the same turn opens a second message of the turn', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 3 },
      { type: 'text_delta', text: 'a' },
      { type: 'tool_input_delta', tool_id: 'c', tool_name: 'list_files', text: '{}' },
      { type: 'text_delta', text: 'b' },
      { type: 'tool_start', tool_id: 'c', tool_name: 'list_files', input: {} },
      { type: 'tool_end', tool_id: 'c', tool_name: 'list_files', tool_output: '', exit_code: 0, reason: 'exited' },
      { type: 'turn_end', turn: 3, usage: USAGE, total_tokens: 15 },
      { type: 'end', text: 'b', total_tokens: 15, usage: USAGE, turns: 1, reason: 'completed' },
    ]),
  );
  const starts = out.filter((e) => e.type === 'TEXT_MESSAGE_START').map((e) => (e.type === 'TEXT_MESSAGE_START' ? e.messageId : ''));
  assert.deepEqual(starts, ['run1-turn3', 'run1-turn3-2']);
  await assertAGUIValid(out);
});

test('a malformed tool call (tool_end with no tool_start) still gets START, END and its RESULT', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'tool_input_delta', tool_id: 'c', tool_name: 'nope', text: '{bad' },
      { type: 'tool_end', tool_id: 'c', tool_name: 'nope', tool_output: 'error: unknown tool', exit_code: null, reason: 'invalid' },
      { type: 'turn_end', turn: 1, usage: USAGE, total_tokens: 15 },
      { type: 'end', text: '', total_tokens: 15, usage: USAGE, turns: 1, reason: 'completed' },
    ]),
  );
  assert.deepEqual(brief(out).slice(2, 7), ['TOOL_CALL_START c nope', 'TOOL_CALL_ARGS {bad', 'TOOL_CALL_END c', 'TOOL_CALL_RESULT c error: unknown tool', 'CUSTOM sluice.tool_end']);
  await assertAGUIValid(out);
});

test('error → RUN_ERROR after closing what is open, and the end after it maps to nothing', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'text_delta', text: 'half' },
      { type: 'error', error: 'the model stream broke off', code: 'LLM_ERROR' },
      { type: 'end', text: 'half', total_tokens: 0, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, turns: 1, reason: 'error' },
    ]),
  );
  assert.deepEqual(brief(out), ['RUN_STARTED', 'STEP_STARTED turn 1', 'TEXT_MESSAGE_START run1-turn1', 'TEXT_MESSAGE_CONTENT half', 'TEXT_MESSAGE_END run1-turn1', 'STEP_FINISHED turn 1', 'RUN_ERROR LLM_ERROR']);
  assert.deepEqual(out.at(-1), { type: 'RUN_ERROR', message: 'the model stream broke off', code: 'LLM_ERROR', timestamp: 1004 });
  await assertAGUIValid(out);
});

test('an end with reason error and no error event before it (lost from the log) is a RUN_ERROR', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'end', text: '', total_tokens: 0, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, turns: 0, reason: 'error' },
    ]),
  );
  assert.deepEqual(brief(out), ['RUN_STARTED', 'RUN_ERROR INTERNAL']);
  await assertAGUIValid(out);
});

test('cancelled while the model writes a tool call: the call is ended and RUN_FINISHED says outcome cancelled', async () => {
  const out = mapAll(
    logOf([
      { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'text_delta', text: 'Working' },
      { type: 'tool_input_delta', tool_id: 'c', tool_name: 'run_code', text: '{"code":"whi' },
      { type: 'end', text: 'Working', total_tokens: 3, usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 }, turns: 1, reason: 'cancelled' },
    ]),
  );
  assert.deepEqual(brief(out).slice(-4), ['TOOL_CALL_ARGS {"code":"whi', 'TOOL_CALL_END c', 'STEP_FINISHED turn 1', 'RUN_FINISHED']);
  const last = out.at(-1);
  assert.equal(last?.type, 'RUN_FINISHED');
  if (last?.type === 'RUN_FINISHED') {
    assert.deepEqual(last.outcome, { type: 'cancelled' });
    assert.deepEqual(last.result, { reason: 'cancelled', text: 'Working', total_tokens: 3, turns: 1 });
  }
  await assertAGUIValid(out);
});

test('cancelled while a tool runs: RUN_FINISHED comes after its RESULT, nothing after RUN_FINISHED', async () => {
  const m = new AGUIMapper(IDS);
  const events = logOf([
    { type: 'agent_start', run_id: 'run1', session_id: 'sess1', model: 'm' },
    { type: 'turn_start', turn: 1 },
    { type: 'tool_start', tool_id: 'c', tool_name: 'run_code', input: { code: 'sleep 100' } },
    { type: 'tool_end', tool_id: 'c', tool_name: 'run_code', tool_output: 'cancelled', exit_code: null, reason: 'cancelled' },
    { type: 'end', text: '', total_tokens: 0, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, turns: 1, reason: 'cancelled' },
  ]);
  const out = events.flatMap((e) => m.map(e));
  assert.equal(m.finished, true);
  assert.deepEqual(m.map({ seq: 99, ts: 1, type: 'text_delta', text: 'late' }), []);
  await assertAGUIValid(out);
});

test('gap events map to nothing; a log starting after a gap still begins with RUN_STARTED', async () => {
  const events = logOf(TOOL_RUN);
  const out = mapAll([{ seq: 7, ts: 1, type: 'gap', from_seq: 1, to_seq: 7 }, ...events.slice(7)]);
  assert.equal(out[0]?.type, 'RUN_STARTED');
  assert.ok(!out.some((e) => e.type === 'CUSTOM' && JSON.stringify(e.value).includes('from_seq')));
  await assertAGUIValid(out);
});

test('whatever part of a run a bounded log lost (every window of events), the output still passes AG-UI’s verifier', async () => {
  const events = logOf(TOOL_RUN);
  for (let i = 0; i < events.length; i++) {
    for (let j = i + 1; j <= events.length; j++) {
      const kept = [...events.slice(0, i), { seq: j, ts: 1, type: 'gap' as const, from_seq: i + 1, to_seq: j }, ...events.slice(j)];
      const problem = await aguiProblem(mapAll(kept));
      assert.equal(problem, null, `events ${i + 1}..${j} lost: ${problem ?? ''}`);
    }
  }
});

test('the verifier helper itself rejects what AG-UI forbids (content outside a message, a second RUN_STARTED)', async () => {
  assert.match(
    (await aguiProblem([
      { type: 'RUN_STARTED', threadId: 't', runId: 'r', timestamp: 1 },
      { type: 'TEXT_MESSAGE_CONTENT', messageId: 'm', delta: 'x', timestamp: 1 },
    ])) ?? '',
    /No active text message/,
  );
  assert.match(
    (await aguiProblem([
      { type: 'RUN_STARTED', threadId: 't', runId: 'r', timestamp: 1 },
      { type: 'RUN_STARTED', threadId: 't', runId: 'r', timestamp: 1 },
    ])) ?? '',
    /while a run is still active/,
  );
});
