import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ToolCallDelta } from './chat-delta.js';
import { ToolCallAccumulator, parseArguments } from './tool-call-accumulator.js';

function frag(f: Omit<ToolCallDelta, 'type' | 'arguments'> & { arguments?: string }): ToolCallDelta {
  return { type: 'tool_call', arguments: '', ...f };
}

function ids(): () => string {
  let n = 0;
  return () => `gen_${++n}`;
}

test('arguments cut mid-token and mid-escape are joined and parsed', () => {
  const acc = new ToolCallAccumulator();
  const whole = '{"code": "print(\\"h\\u00e9llo\\")\\n", "language": "python"}';
  acc.push(frag({ index: 0, id: 'call_1', name: 'run_code' }));
  // One character at a time: every escape (\" \n \u00e9) is split somewhere.
  for (const ch of whole) acc.push(frag({ index: 0, arguments: ch }));
  const [call, ...rest] = acc.finish();
  assert.equal(rest.length, 0);
  assert.deepEqual(call, {
    id: 'call_1',
    name: 'run_code',
    arguments: whole,
    parsed: { ok: true, value: { code: 'print("héllo")\n', language: 'python' } },
  });
});

test('several calls interleaved by index are kept apart, in the order they began', () => {
  const acc = new ToolCallAccumulator();
  acc.push(frag({ index: 0, id: 'a', name: 'read_file', arguments: '{"pa' }));
  acc.push(frag({ index: 1, id: 'b', name: 'list_files', arguments: '{' }));
  acc.push(frag({ index: 0, arguments: 'th":"x.txt"}' }));
  acc.push(frag({ index: 1, arguments: '}' }));
  const calls = acc.finish();
  assert.deepEqual(
    calls.map((c) => [c.id, c.name, c.parsed]),
    [
      ['a', 'read_file', { ok: true, value: { path: 'x.txt' } }],
      ['b', 'list_files', { ok: true, value: {} }],
    ],
  );
});

test('push reports the call a fragment belongs to, and which fragment began it', () => {
  const acc = new ToolCallAccumulator(ids());
  assert.deepEqual(acc.push(frag({ index: 0, id: 'a', name: 'run_code' })), { position: 0, id: 'a', name: 'run_code', started: true, fragment: '' });
  assert.deepEqual(acc.push(frag({ index: 0, arguments: '{}' })), { position: 0, id: 'a', name: 'run_code', started: false, fragment: '{}' });
  assert.deepEqual(acc.push(frag({ index: 1, name: 'list_files' })), { position: 1, id: 'gen_1', name: 'list_files', started: true, fragment: '' });
});

test('a fragment without index continues the last call, unless it carries a new id', () => {
  const acc = new ToolCallAccumulator(ids());
  acc.push(frag({ id: 'a', name: 'read_file', arguments: '{"path":' }));
  acc.push(frag({ arguments: '"a"}' }));
  acc.push(frag({ id: 'a', arguments: '' })); // the same id repeated is no new call
  acc.push(frag({ id: 'b', name: 'read_file', arguments: '{"path":"b"}' }));
  acc.push(frag({ arguments: '' }));
  assert.deepEqual(
    acc.finish().map((c) => [c.id, c.parsed]),
    [
      ['a', { ok: true, value: { path: 'a' } }],
      ['b', { ok: true, value: { path: 'b' } }],
    ],
  );
});

test('a repeated index with a new id starts a new call; later fragments of that index go to it', () => {
  const acc = new ToolCallAccumulator();
  acc.push(frag({ index: 0, id: 'a', name: 'run_code', arguments: '{"code":"1"}' }));
  acc.push(frag({ index: 0, id: 'b', name: 'run_code', arguments: '{"code":' }));
  acc.push(frag({ index: 0, arguments: '"2"}' }));
  assert.deepEqual(
    acc.finish().map((c) => [c.id, c.parsed]),
    [
      ['a', { ok: true, value: { code: '1' } }],
      ['b', { ok: true, value: { code: '2' } }],
    ],
  );
});

test('calls without an id get a generated one that stays theirs, even if an id arrives late', () => {
  const acc = new ToolCallAccumulator(ids());
  acc.push(frag({ index: 0, name: 'list_files', arguments: '{' }));
  acc.push(frag({ index: 0, id: 'late', arguments: '}' }));
  const calls = acc.finish();
  assert.equal(calls.length, 1);
  assert.equal(calls[0]?.id, 'gen_1');
  const real = new ToolCallAccumulator();
  real.push(frag({ index: 0, name: 'x' }));
  assert.match(real.finish()[0]?.id ?? '', /^call_[0-9a-f]{24}$/);
});

test('a name repeated on every fragment names the call once', () => {
  const acc = new ToolCallAccumulator();
  acc.push(frag({ index: 0, id: 'a', name: 'run_code', arguments: '{' }));
  acc.push(frag({ index: 0, id: 'a', name: 'run_code', arguments: '}' }));
  assert.deepEqual(acc.finish().map((c) => [c.name, c.arguments]), [['run_code', '{}']]);
});

test('bad arguments are reported, not thrown', () => {
  assert.deepEqual(parseArguments('  '), { ok: true, value: {} });
  const cut = parseArguments('{"code": "pri');
  assert.equal(cut.ok, false);
  if (!cut.ok) assert.match(cut.error, /not valid JSON/);
  assert.deepEqual(parseArguments('[1]'), { ok: false, error: 'the arguments must be a JSON object, got an array' });
  assert.deepEqual(parseArguments('null'), { ok: false, error: 'the arguments must be a JSON object, got null' });
  assert.deepEqual(parseArguments('"s"'), { ok: false, error: 'the arguments must be a JSON object, got string' });
  const acc = new ToolCallAccumulator();
  assert.equal(acc.empty, true);
  acc.push(frag({ index: 0, id: 'a', name: 'run_code', arguments: '{"code":' }));
  assert.equal(acc.finish()[0]?.parsed.ok, false);
});
