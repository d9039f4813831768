import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from './agent-events.js';
import { emptyAgentResult, foldAgentEvent, foldAgentEvents } from './agent-fold.js';

type Bare<E = AgentEvent> = E extends AgentEvent ? Omit<E, 'seq' | 'ts'> : never;

function numbered(events: Bare[]): AgentEvent[] {
  return events.map((e, i) => ({ ...e, seq: i + 1, ts: i }) as AgentEvent);
}

const u = (p: number, c: number) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });

/** Two tool calls in one turn (one runs code with a result, one is malformed), then the answer. */
const RUN = numbered([
  { type: 'agent_start', run_id: 'run-9', session_id: 's', model: 'm' },
  { type: 'turn_start', turn: 1 },
  { type: 'text_delta', text: 'Let me check.' },
  { type: 'tool_input_delta', tool_id: 'a', tool_name: 'run_code', text: '{"code":"1+1"}' },
  { type: 'tool_input_delta', tool_id: 'b', tool_name: 'nope', text: '{}' },
  { type: 'tool_start', tool_id: 'a', tool_name: 'run_code', input: { code: '1+1' } },
  { type: 'tool_output_delta', tool_id: 'a', tool_name: 'run_code', stream: 'stdout', text: 'x\n', execution_id: 'e1' },
  { type: 'tool_progress', tool_id: 'a', tool_name: 'run_code', execution_id: 'e1', percent: 50 },
  { type: 'tool_result', tool_id: 'a', tool_name: 'run_code', execution_id: 'e1', data: { 'text/plain': '2' } },
  { type: 'tool_end', tool_id: 'a', tool_name: 'run_code', tool_output: 'x\n[result] 2', exit_code: 0, reason: 'exited', execution_id: 'e1' },
  { type: 'tool_end', tool_id: 'b', tool_name: 'nope', tool_output: 'unknown tool "nope"', exit_code: null, reason: 'invalid' },
  { type: 'turn_end', turn: 1, usage: u(100, 20), total_tokens: 120 },
  { type: 'turn_start', turn: 2 },
  { type: 'text_delta', text: 'It is ' },
  { type: 'text_delta', text: '2.' },
  { type: 'turn_end', turn: 2, usage: u(150, 5), total_tokens: 275 },
  { type: 'end', text: 'It is 2.', total_tokens: 275, usage: u(250, 25), turns: 2, reason: 'completed' },
]);

test('a realistic run folds into its buffered answer: the last turn\'s text, the tool calls in order, the tokens', () => {
  assert.deepEqual(foldAgentEvents(RUN), {
    run_id: 'run-9',
    text: 'It is 2.',
    reason: 'completed',
    turns: 2,
    total_tokens: 275,
    tool_calls: [
      { tool_id: 'a', tool_name: 'run_code', input: { code: '1+1' }, tool_output: 'x\n[result] 2', exit_code: 0, reason: 'exited', execution_id: 'e1', results: [{ 'text/plain': '2' }] },
      { tool_id: 'b', tool_name: 'nope', input: {}, tool_output: 'unknown tool "nope"', exit_code: null, reason: 'invalid', execution_id: null, results: [] },
    ],
    usage: u(250, 25),
    error: null,
    gap: false,
  });
});

test('folding event by event gives the state so far: a live run has no reason, its text is the current turn\'s', () => {
  const acc = emptyAgentResult();
  for (const ev of RUN.slice(0, 14)) foldAgentEvent(acc, ev);
  assert.equal(acc.reason, null);
  assert.equal(acc.text, 'It is ');
  assert.equal(acc.turns, 2);
  assert.equal(acc.total_tokens, 120);
  assert.deepEqual(acc.usage, u(100, 20));
});

test('a failed run keeps its error, a resumed reader\'s gap is flagged, and end wins over the sums', () => {
  const failed = foldAgentEvents(
    numbered([
      { type: 'agent_start', run_id: 'r', session_id: 's', model: 'm' },
      { type: 'turn_start', turn: 1 },
      { type: 'text_delta', text: 'Hal' },
      { type: 'gap', from_seq: 1, to_seq: 4 },
      { type: 'error', error: 'the model stream failed', code: 'LLM_ERROR' },
      { type: 'end', text: 'Hal', total_tokens: 0, usage: u(0, 0), turns: 1, reason: 'error' },
    ]),
  );
  assert.equal(failed.reason, 'error');
  assert.deepEqual(failed.error, { code: 'LLM_ERROR', message: 'the model stream failed' });
  assert.equal(failed.gap, true);
  assert.equal(failed.text, 'Hal');
});
