import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_AGENT_TURNS, MAX_PROMPT_CHARS, parseAgentRequest } from './requests.js';

test('a full agent request is accepted as sent', () => {
  const body = {
    prompt: 'Plot sin(x)',
    system: 'You are terse.',
    model: 'gpt-4o-mini',
    max_turns: 5,
    tools: ['run_code', 'write_file'],
    language: 'python',
    timeout: 30,
    heartbeat: 5,
    on_disconnect: 'cancel',
  };
  assert.deepEqual(parseAgentRequest(body), { ok: true, value: body });
});

test('only the prompt is required; an empty system prompt is allowed', () => {
  assert.deepEqual(parseAgentRequest({ prompt: 'hi' }), { ok: true, value: { prompt: 'hi' } });
  assert.deepEqual(parseAgentRequest({ prompt: 'hi', system: '' }), { ok: true, value: { prompt: 'hi', system: '' } });
});

test('each bad field is refused with INVALID_REQUEST naming the field', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /^prompt: .*required/],
    [{ prompt: '' }, /^prompt: /],
    [{ prompt: 42 }, /^prompt: expected .*string/],
    [{ prompt: 'x'.repeat(MAX_PROMPT_CHARS + 1) }, /^prompt: expected at most/],
    [{ prompt: 'p', system: 7 }, /^system: /],
    [{ prompt: 'p', model: '' }, /^model: /],
    [{ prompt: 'p', max_turns: 0 }, /^max_turns: /],
    [{ prompt: 'p', max_turns: 1.5 }, /^max_turns: /],
    [{ prompt: 'p', max_turns: MAX_AGENT_TURNS + 1 }, /^max_turns: /],
    [{ prompt: 'p', tools: 'run_code' }, /^tools: expected an array/],
    [{ prompt: 'p', language: 3 }, /^language: /],
    [{ prompt: 'p', timeout: 0 }, /^timeout: /],
    [{ prompt: 'p', timeout: 'soon' }, /^timeout: /],
    [{ prompt: 'p', heartbeat: 0 }, /^heartbeat: /],
    [{ prompt: 'p', on_disconnect: 'stop' }, /^on_disconnect: /],
  ];
  for (const [body, message] of cases) {
    const r = parseAgentRequest(body);
    assert.equal(r.ok, false, JSON.stringify(body).slice(0, 80));
    if (r.ok) continue;
    assert.equal(r.code, 'INVALID_REQUEST');
    assert.match(r.message, message);
  }
});

test('an unknown field is refused, naming it', () => {
  const r = parseAgentRequest({ prompt: 'p', temperature: 0.2 });
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.message, /temperature/);
});

test('tools must be a subset of the four tools: unknown or repeated names are refused, naming the index', () => {
  assert.deepEqual(parseAgentRequest({ prompt: 'p', tools: ['list_files', 'read_file'] }), { ok: true, value: { prompt: 'p', tools: ['list_files', 'read_file'] } });
  assert.deepEqual(parseAgentRequest({ prompt: 'p', tools: [] }), { ok: true, value: { prompt: 'p', tools: [] } });
  const unknown = parseAgentRequest({ prompt: 'p', tools: ['run_code', 'shell'] });
  assert.match(unknown.ok ? '' : unknown.message, /^tools\[1\]: expected an array of distinct values from "run_code", "read_file", "write_file", "list_files", got "shell"/);
  const repeated = parseAgentRequest({ prompt: 'p', tools: ['run_code', 'run_code'] });
  assert.match(repeated.ok ? '' : repeated.message, /^tools\[1\]: /);
  const notString = parseAgentRequest({ prompt: 'p', tools: [1] });
  assert.match(notString.ok ? '' : notString.message, /^tools\[0\]: /);
});

test('a body that is not an object is refused', () => {
  for (const body of [null, 'prompt', [], 3]) assert.equal(parseAgentRequest(body).ok, false);
});
