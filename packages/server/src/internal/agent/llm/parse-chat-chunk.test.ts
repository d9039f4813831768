import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChatChunk } from './parse-chat-chunk.js';

const head = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1741570283, model: 'gpt-4o-mini', system_fingerprint: 'fp_1' };

test('a role-only first chunk carries no delta', () => {
  const r = parseChatChunk({ ...head, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null });
  assert.deepEqual(r, { ok: true, deltas: [] });
});

test('text, tool call fragments, finish and usage come out in that order', () => {
  const r = parseChatChunk({
    ...head,
    choices: [
      {
        index: 0,
        delta: { content: 'hi', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'run_code', arguments: '' } }, { index: 1, id: '', function: { arguments: '{' } }] },
        finish_reason: 'tool_calls',
      },
    ],
    usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
  });
  assert.deepEqual(r, {
    ok: true,
    deltas: [
      { type: 'text', text: 'hi' },
      { type: 'tool_call', index: 0, id: 'call_1', name: 'run_code', arguments: '' },
      { type: 'tool_call', index: 1, arguments: '{' },
      { type: 'finish', reason: 'tool_calls', raw: 'tool_calls' },
      { type: 'usage', usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
    ],
  });
});

test('a usage-only chunk with empty choices gives the usage', () => {
  const r = parseChatChunk({ ...head, choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } });
  assert.deepEqual(r, { ok: true, deltas: [{ type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }] });
});

test('finish reasons map onto the union, keeping the raw value', () => {
  const reasonOf = (raw: string): unknown => {
    const r = parseChatChunk({ choices: [{ index: 0, delta: {}, finish_reason: raw }] });
    return r.ok ? r.deltas[0] : r;
  };
  assert.deepEqual(reasonOf('length'), { type: 'finish', reason: 'length', raw: 'length' });
  assert.deepEqual(reasonOf('content_filter'), { type: 'finish', reason: 'content_filter', raw: 'content_filter' });
  assert.deepEqual(reasonOf('function_call'), { type: 'finish', reason: 'tool_calls', raw: 'function_call' });
  assert.deepEqual(reasonOf('eos'), { type: 'finish', reason: 'other', raw: 'eos' });
});

test('only the first choice is read', () => {
  const r = parseChatChunk({ choices: [{ index: 1, delta: { content: 'no' } }, { index: 0, delta: { content: 'yes' } }] });
  assert.deepEqual(r, { ok: true, deltas: [{ type: 'text', text: 'yes' }] });
});

test('wrong types and in-band errors are reported, never thrown', () => {
  assert.deepEqual(parseChatChunk([]), { ok: false, kind: 'invalid', message: 'a chunk is not a JSON object' });
  assert.deepEqual(parseChatChunk({ choices: {} }), { ok: false, kind: 'invalid', message: '`choices` is not an array' });
  assert.equal(parseChatChunk({ choices: [{ index: 0, delta: { content: 5 } }] }).ok, false);
  assert.equal(parseChatChunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: -1 }] } }] }).ok, false);
  assert.equal(parseChatChunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: {} } }] } }] }).ok, false);
  // Usage is best effort: malformed counts are ignored, the chunk still counts.
  assert.deepEqual(parseChatChunk({ usage: { prompt_tokens: 'x' } }), { ok: true, deltas: [] });
  assert.deepEqual(parseChatChunk({ error: { message: 'overloaded', code: 502 } }), { ok: false, kind: 'upstream_error', message: 'overloaded' });
});
