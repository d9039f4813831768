import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from './agent-events.js';
import { agentAcceptedMessage, agentEndMessage, agentEventFrame, encodeClientMessage, parseClientMessage, parseServerMessage, type ClientMessage } from './ws-messages.js';

test('agent client messages round-trip through encode and parse', () => {
  const messages: ClientMessage[] = [
    { type: 'agent', request_id: 'q1', agent: { prompt: 'hi', model: 'm', max_turns: 3, tools: ['run_code'], language: 'python', timeout: 10, system: 's' } },
    { type: 'agent', request_id: 'q2', agent: { prompt: 'only a prompt' } },
    { type: 'agent_subscribe', run_id: 'r1', from: 5 },
    { type: 'agent_unsubscribe', run_id: 'r1' },
    { type: 'agent_cancel', run_id: 'r1' },
  ];
  for (const m of messages) assert.deepEqual(parseClientMessage(encodeClientMessage(m)), { ok: true, value: m }, m.type);
});

test('subscribe, unsubscribe and cancel carry a run_id on the wire', () => {
  assert.equal(encodeClientMessage({ type: 'agent_subscribe', run_id: 'r1', from: 2 }), '{"type":"subscribe","run_id":"r1","from":2}');
  assert.equal(encodeClientMessage({ type: 'agent_cancel', run_id: 'r1' }), '{"type":"cancel","run_id":"r1"}');
  assert.deepEqual(parseClientMessage('{"type":"subscribe","run_id":"r1"}'), { ok: true, value: { type: 'agent_subscribe', run_id: 'r1', from: 1 } });
  assert.deepEqual(parseClientMessage('{"type":"subscribe","execution_id":"e1","from":3}'), { ok: true, value: { type: 'subscribe', execution_id: 'e1', from: 3 } });
});

test('an agent message drops SSE-only fields when encoded', () => {
  const text = encodeClientMessage({ type: 'agent', request_id: 'q', agent: { prompt: 'p', heartbeat: 5, on_disconnect: 'cancel' } });
  assert.deepEqual(JSON.parse(text), { type: 'agent', request_id: 'q', prompt: 'p' });
});

test('both ids, or neither, or a bad agent body is refused with the ids echoed', () => {
  const both = parseClientMessage('{"type":"subscribe","execution_id":"e1","run_id":"r1"}');
  assert.equal(both.ok, false);
  if (!both.ok) {
    assert.equal(both.code, 'INVALID_REQUEST');
    assert.match(both.message, /execution_id, run_id: expected one of them/);
    assert.deepEqual(both.ids, { execution_id: 'e1', run_id: 'r1' });
  }
  const neither = parseClientMessage('{"type":"cancel"}');
  assert.match(neither.ok ? '' : neither.message, /execution_id: .*or a run_id/);
  const badBody = parseClientMessage('{"type":"agent","request_id":"q","prompt":"p","max_turns":0}');
  assert.equal(badBody.ok, false);
  if (!badBody.ok) {
    assert.match(badBody.message, /^max_turns: /);
    assert.deepEqual(badBody.ids, { request_id: 'q' });
  }
  const heartbeat = parseClientMessage('{"type":"agent","request_id":"q","prompt":"p","heartbeat":5}');
  assert.match(heartbeat.ok ? '' : heartbeat.message, /heartbeat: unknown field/);
  const noRequest = parseClientMessage('{"type":"agent","prompt":"p"}');
  assert.match(noRequest.ok ? '' : noRequest.message, /^request_id: /);
});

test('accepted with a run_id is agent_accepted; an event frame with a run_id is agent_event', () => {
  assert.deepEqual(parseServerMessage(agentAcceptedMessage('q1', 'r1')), { ok: true, value: { type: 'agent_accepted', request_id: 'q1', run_id: 'r1' } });
  const delta: AgentEvent = { type: 'text_delta', seq: 3, ts: 7, text: 'hi' };
  const frame = agentEventFrame({ type: delta.type, json: JSON.stringify(delta) }, 'r1');
  assert.deepEqual(JSON.parse(frame), { ...delta, run_id: 'r1' });
  assert.deepEqual(parseServerMessage(frame), { ok: true, value: { type: 'agent_event', run_id: 'r1', event: delta } });
  // agent_start names its run already: the frame is the log's JSON unchanged.
  const start: AgentEvent = { type: 'agent_start', seq: 1, ts: 7, run_id: 'r1', session_id: 's', model: 'm' };
  assert.equal(agentEventFrame({ type: start.type, json: JSON.stringify(start) }, 'r1'), JSON.stringify(start));
  assert.deepEqual(parseServerMessage(JSON.stringify(start)), { ok: true, value: { type: 'agent_event', run_id: 'r1', event: start } });
});

test('end with seq and run_id is the run\'s last event; end with run_id and last_seq but no seq is agent_end', () => {
  const end: AgentEvent = { type: 'end', seq: 9, ts: 1, text: 'done', total_tokens: 5, usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }, turns: 1, reason: 'completed' };
  assert.deepEqual(parseServerMessage(agentEventFrame({ type: 'end', json: JSON.stringify(end) }, 'r1')), { ok: true, value: { type: 'agent_event', run_id: 'r1', event: end } });
  assert.deepEqual(parseServerMessage(agentEndMessage('r1', 9)), { ok: true, value: { type: 'agent_end', run_id: 'r1', last_seq: 9 } });
  // An execution's `end` is still its own message.
  assert.deepEqual(parseServerMessage('{"type":"end","execution_id":"e1","last_seq":4}'), { ok: true, value: { type: 'end', execution_id: 'e1', last_seq: 4 } });
});

test('a malformed agent event frame names its run, so that stream alone fails', () => {
  const r = parseServerMessage('{"type":"text_delta","seq":2,"ts":1,"run_id":"r1"}');
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.eventOf, 'r1');
    assert.match(r.message, /text/);
  }
});
