import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PROMPT_CHARS } from '@sluice/protocol';
import { parseRunAgentInput } from './parse-run-agent-input.js';

/** A RunAgentInput as @ag-ui/client's HttpAgent sends it. */
function input(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    threadId: 'thread-1',
    runId: 'run-1',
    state: {},
    messages: [{ id: 'm1', role: 'user', content: 'What is 2+2?' }],
    tools: [],
    context: [],
    forwardedProps: {},
    ...extra,
  };
}

function failure(body: unknown): string {
  const r = parseRunAgentInput(body);
  assert.equal(r.ok, false, 'expected INVALID_REQUEST');
  if (r.ok) return '';
  assert.equal(r.code, 'INVALID_REQUEST');
  return r.message;
}

test('the prompt is the last user message; earlier messages are not replayed (nor checked beyond their role)', () => {
  const r = parseRunAgentInput(
    input({
      messages: [
        { id: 'm0', role: 'user', content: [] },
        { id: 'm1', role: 'user', content: 'first' },
        { id: 'm2', role: 'assistant', content: 'an answer', toolCalls: [] },
        { id: 'm3', role: 'tool', content: 'x', toolCallId: 'c' },
        { id: 'm4', role: 'user', content: 'second' },
      ],
    }),
  );
  assert.deepEqual(r, { ok: true, value: { prompt: 'second' } });
});

test('a user message of content parts: its text parts joined, other parts skipped', () => {
  const r = parseRunAgentInput(
    input({
      messages: [
        {
          id: 'm1',
          role: 'user',
          content: [
            { type: 'text', text: 'Look:' },
            { type: 'image', source: { type: 'url', value: 'https://example.com/a.png' } },
            { type: 'text', text: 'what is it?' },
          ],
        },
      ],
    }),
  );
  assert.deepEqual(r, { ok: true, value: { prompt: 'Look:\n\nwhat is it?' } });
});

test('a system (or developer) message becomes the system prompt; forwardedProps.system wins over it', () => {
  const sys = { id: 's', role: 'system', content: 'Be terse.' };
  const user = { id: 'u', role: 'user', content: 'hi' };
  assert.deepEqual(parseRunAgentInput(input({ messages: [sys, user] })), { ok: true, value: { prompt: 'hi', system: 'Be terse.' } });
  assert.deepEqual(parseRunAgentInput(input({ messages: [{ ...sys, role: 'developer' }, user] })), { ok: true, value: { prompt: 'hi', system: 'Be terse.' } });
  assert.deepEqual(parseRunAgentInput(input({ messages: [sys, user], forwardedProps: { system: 'Be verbose.' } })), { ok: true, value: { prompt: 'hi', system: 'Be verbose.' } });
});

test('forwardedProps carries Sluice’s agent options; keys of other front ends are ignored', () => {
  const r = parseRunAgentInput(
    input({ forwardedProps: { model: 'gpt-x', max_turns: 3, tools: ['run_code'], language: 'python', timeout: 5, heartbeat: 2, on_disconnect: 'cancel', copilotkit: { a: 1 } } }),
  );
  assert.deepEqual(r, {
    ok: true,
    value: { prompt: 'What is 2+2?', model: 'gpt-x', max_turns: 3, tools: ['run_code'], language: 'python', timeout: 5, heartbeat: 2, on_disconnect: 'cancel' },
  });
});

test('the client’s tools, context, state, threadId and runId are accepted and not used', () => {
  const r = parseRunAgentInput(input({ tools: [{ name: 'confirm', description: 'ask', parameters: {} }], context: [{ description: 'd', value: 'v' }], state: { a: 1 } }));
  assert.deepEqual(r, { ok: true, value: { prompt: 'What is 2+2?' } });
  // A minimal body (curl) is enough.
  assert.deepEqual(parseRunAgentInput({ messages: [{ role: 'user', content: 'x' }] }), { ok: true, value: { prompt: 'x' } });
});

test('INVALID_REQUEST names the field: no user message, a blank prompt, messages missing or malformed', () => {
  assert.match(failure(input({ messages: [] })), /^messages: expected at least one message with role "user"/);
  assert.match(failure(input({ messages: [{ id: 'a', role: 'assistant', content: 'x' }] })), /^messages: expected at least one message with role "user"/);
  assert.match(failure(input({ messages: [{ id: 'a', role: 'user', content: '  ' }] })), /^messages\[0\]\.content: expected the prompt/);
  assert.match(failure(input({ messages: [{ id: 'a', role: 'user', content: 42 }] })), /^messages\[0\]\.content: expected a string or a list of content parts, got 42 \(number\)/);
  assert.match(failure(input({ messages: [{ id: 'a', content: 'x' }] })), /^messages\[0\]\.role: expected a string, got nothing/);
  assert.match(failure(input({ messages: ['x'] })), /^messages\[0\]: expected a message object/);
  assert.match(failure(input({ messages: undefined })), /^messages: expected an array of AG-UI messages \(it is required\), got nothing/);
  assert.match(failure([]), /^request body: expected an AG-UI RunAgentInput/);
  assert.match(failure(undefined), /^request body: expected an AG-UI RunAgentInput/);
});

test('INVALID_REQUEST for wrong types of the other RunAgentInput fields', () => {
  assert.match(failure(input({ threadId: 5 })), /^threadId: expected a string, got 5 \(number\)/);
  assert.match(failure(input({ runId: null })), /^runId: expected a string, got null/);
  assert.match(failure(input({ tools: {} })), /^tools: expected an array, got an object/);
  assert.match(failure(input({ context: 'x' })), /^context: expected an array/);
  assert.match(failure(input({ forwardedProps: [1] })), /^forwardedProps: expected an object, got an array/);
});

test('a bad Sluice option in forwardedProps is refused with its full path', () => {
  assert.match(failure(input({ forwardedProps: { max_turns: 0 } })), /^forwardedProps\.max_turns: expected an integer >= 1/);
  assert.match(failure(input({ forwardedProps: { tools: ['rm_rf'] } })), /^forwardedProps\.tools\[0\]: expected an array of distinct values/);
  assert.match(failure(input({ forwardedProps: { on_disconnect: 'stop' } })), /^forwardedProps\.on_disconnect: expected one of "continue", "cancel"/);
});

test('a prompt longer than the agent request allows is refused', () => {
  assert.match(failure(input({ messages: [{ id: 'a', role: 'user', content: 'x'.repeat(MAX_PROMPT_CHARS + 1) }] })), /^messages\[0\]\.content: expected the prompt: at most/);
});
