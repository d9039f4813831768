import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_EVENT_TYPES, type AgentEvent, type AgentEventType } from './agent-events.js';
import { parseAgentEvent } from './parse-agent-event.js';

const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };

/** One valid event of each type, and a field to break in it. */
const VALID: Record<AgentEventType, { event: AgentEvent; bad: [string, unknown] }> = {
  agent_start: { event: { type: 'agent_start', seq: 1, ts: 1, run_id: 'r', session_id: 's', model: 'm' }, bad: ['run_id', 5] },
  turn_start: { event: { type: 'turn_start', seq: 2, ts: 1, turn: 1 }, bad: ['turn', 0] },
  text_delta: { event: { type: 'text_delta', seq: 3, ts: 1, text: 'hé' }, bad: ['text', null] },
  tool_input_delta: { event: { type: 'tool_input_delta', seq: 4, ts: 1, tool_id: 't', tool_name: 'run_code', text: '{"co' }, bad: ['tool_id', undefined] },
  tool_start: { event: { type: 'tool_start', seq: 5, ts: 1, tool_id: 't', tool_name: 'run_code', input: { code: '1' } }, bad: ['input', '{"code":"1"}'] },
  tool_output_delta: {
    event: { type: 'tool_output_delta', seq: 6, ts: 1, tool_id: 't', tool_name: 'run_code', stream: 'stdout', text: '1\n', execution_id: 'e' },
    bad: ['stream', 'stdin'],
  },
  tool_progress: { event: { type: 'tool_progress', seq: 7, ts: 1, tool_id: 't', tool_name: 'run_code', execution_id: 'e', message: 'half', percent: 50, data: { n: 1 } }, bad: ['percent', '50'] },
  tool_result: { event: { type: 'tool_result', seq: 8, ts: 1, tool_id: 't', tool_name: 'run_code', execution_id: 'e', data: { 'text/plain': '1' } }, bad: ['data', []] },
  tool_end: {
    event: { type: 'tool_end', seq: 9, ts: 1, tool_id: 't', tool_name: 'run_code', tool_output: '1\n', exit_code: 0, reason: 'exited', execution_id: 'e' },
    bad: ['reason', 'done'],
  },
  turn_end: { event: { type: 'turn_end', seq: 10, ts: 1, turn: 1, usage, total_tokens: 5 }, bad: ['usage', { prompt_tokens: 1 }] },
  gap: { event: { type: 'gap', seq: 11, ts: 1, from_seq: 2, to_seq: 11 }, bad: ['from_seq', -1] },
  error: { event: { type: 'error', seq: 12, ts: 1, error: 'model failed', code: 'LLM_ERROR' }, bad: ['code', 502] },
  end: { event: { type: 'end', seq: 13, ts: 1, text: 'done', total_tokens: 5, usage, turns: 1, reason: 'completed' }, bad: ['reason', 'finished'] },
};

test('every agent event type parses back to itself', () => {
  assert.deepEqual(Object.keys(VALID).sort(), [...AGENT_EVENT_TYPES].sort());
  for (const { event } of Object.values(VALID)) {
    assert.deepEqual(parseAgentEvent(JSON.parse(JSON.stringify(event))), { ok: true, value: event }, event.type);
  }
});

test('a bad field of each type is refused with INTERNAL naming it', () => {
  for (const { event, bad } of Object.values(VALID)) {
    const [field, value] = bad;
    const json: Record<string, unknown> = { ...event };
    if (value === undefined) delete json[field];
    else json[field] = value;
    const r = parseAgentEvent(json);
    assert.equal(r.ok, false, `${event.type}.${field}`);
    if (r.ok) continue;
    assert.equal(r.code, 'INTERNAL');
    assert.match(r.message, new RegExp(field), event.type);
  }
});

test('the envelope and the type are checked; optional fields may be absent; extra fields are dropped', () => {
  assert.equal(parseAgentEvent({ type: 'text_delta', ts: 1, text: 'x' }).ok, false, 'no seq');
  assert.equal(parseAgentEvent({ type: 'text_delta', seq: 0, ts: 1, text: 'x' }).ok, false, 'seq 0');
  assert.equal(parseAgentEvent({ type: 'stdout', seq: 1, ts: 1, content: 'x' }).ok, false, 'an execution event');
  assert.equal(parseAgentEvent('text').ok, false);
  assert.deepEqual(parseAgentEvent({ type: 'tool_progress', seq: 1, ts: 1, tool_id: 't', tool_name: 'run_code', execution_id: 'e' }), {
    ok: true,
    value: { type: 'tool_progress', seq: 1, ts: 1, tool_id: 't', tool_name: 'run_code', execution_id: 'e' },
  });
  const toolEnd = parseAgentEvent({ type: 'tool_end', seq: 1, ts: 1, tool_id: 't', tool_name: 'x', tool_output: 'unknown tool', exit_code: null, reason: 'invalid', extra: 1 });
  assert.deepEqual(toolEnd, { ok: true, value: { type: 'tool_end', seq: 1, ts: 1, tool_id: 't', tool_name: 'x', tool_output: 'unknown tool', exit_code: null, reason: 'invalid' } });
  // `usage` on `end` is an extension: without it, the total stands in.
  const end = parseAgentEvent({ type: 'end', seq: 2, ts: 1, text: '', total_tokens: 9, turns: 0, reason: 'cancelled' });
  assert.ok(end.ok && end.value.type === 'end');
  assert.deepEqual(end.ok && end.value.type === 'end' ? end.value.usage : null, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 9 });
});
