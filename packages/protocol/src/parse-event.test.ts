import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExecutionEvent } from './parse-event.js';
import { EVENT_TYPES, type EventType, type ExecutionEvent } from './events.js';
import { encodeEventSSE } from './sse-encoder.js';
import { SSEDecoder } from './sse-decoder.js';
import { NDJSONDecoder, encodeEventNDJSON } from './ndjson.js';

/** One valid example of every variant. */
const EXAMPLES: Record<EventType, ExecutionEvent> = {
  start: { type: 'start', seq: 1, ts: 1700000000000, execution_id: 'ex_1', session_id: 's1', language: 'python', mode: 'kernel' },
  stdout: { type: 'stdout', seq: 2, ts: 1700000000001, content: 'hi\n' },
  stderr: { type: 'stderr', seq: 3, ts: 1700000000002, content: '' },
  progress: { type: 'progress', seq: 4, ts: 1700000000003, message: 'half', percent: 50, data: { step: [1, 2] } },
  result: { type: 'result', seq: 5, ts: 1700000000004, data: { 'text/plain': '42', 'image/png': 'iVBOR…' } },
  truncated: { type: 'truncated', seq: 6, ts: 1700000000005, stream: 'stdout', dropped_bytes: 1024 },
  gap: { type: 'gap', seq: 9, ts: 1700000000006, from_seq: 7, to_seq: 9 },
  done: { type: 'done', seq: 10, ts: 1700000000007, exit_code: 0, duration: '5.123s', duration_ms: 5123, reason: 'exited' },
  error: { type: 'error', seq: 11, ts: 1700000000008, error: 'sandbox unavailable', code: 'SANDBOX_UNAVAILABLE' },
};

/** The fields each variant requires besides type, seq and ts. */
const REQUIRED: Record<EventType, readonly string[]> = {
  start: ['execution_id', 'session_id', 'language', 'mode'],
  stdout: ['content'],
  stderr: ['content'],
  progress: [],
  result: ['data'],
  truncated: ['stream', 'dropped_bytes'],
  gap: ['from_seq', 'to_seq'],
  done: ['exit_code', 'duration', 'duration_ms', 'reason'],
  error: ['error', 'code'],
};

/** A JSON copy of `ev` with `changes` applied (an `undefined` value deletes the field). */
function variant(ev: ExecutionEvent, changes: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(ev)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete copy[k];
    else copy[k] = v;
  }
  return copy;
}

function rejectMessage(value: unknown): string {
  const r = parseExecutionEvent(value);
  assert.equal(r.ok, false, `expected rejection of ${JSON.stringify(value)}`);
  if (r.ok) return '';
  assert.equal(r.code, 'INTERNAL');
  return r.message;
}

test('a valid example of every event type is accepted as an equal, fresh object', () => {
  for (const type of EVENT_TYPES) {
    const input = variant(EXAMPLES[type], {});
    const r = parseExecutionEvent(input);
    assert.ok(r.ok, type);
    assert.deepEqual(r.value, EXAMPLES[type]);
    assert.notEqual(r.value, input);
  }
});

test('optional fields may be absent', () => {
  assert.deepEqual(parseExecutionEvent({ type: 'progress', seq: 1, ts: 0 }), { ok: true, value: { type: 'progress', seq: 1, ts: 0 } });
  const signaled = { ...EXAMPLES.done, exit_code: null, reason: 'signaled', signal: 'SIGKILL' };
  assert.deepEqual(parseExecutionEvent(signaled), { ok: true, value: signaled });
});

test('progress data may be any JSON value, null included', () => {
  for (const data of [null, 0, 'x', [1], { a: 1 }]) {
    const r = parseExecutionEvent({ type: 'progress', seq: 1, ts: 0, data });
    assert.ok(r.ok);
    assert.deepEqual(r.value, { type: 'progress', seq: 1, ts: 0, data });
  }
});

test('unknown extra fields are dropped, so newer servers can add fields', () => {
  const r = parseExecutionEvent({ ...EXAMPLES.stdout, extra: 1 });
  assert.ok(r.ok);
  assert.deepEqual(r.value, EXAMPLES.stdout);
});

test('fields inherited through the prototype do not count', () => {
  const inherited: unknown = Object.assign(Object.create({ content: 'from the prototype' }) as object, { type: 'stdout', seq: 1, ts: 0 });
  assert.equal(rejectMessage(inherited), 'stdout.content: expected a string, got nothing');
});

test('a value that is not a JSON object is rejected', () => {
  assert.equal(rejectMessage(null), 'event: expected a JSON object, got null');
  assert.equal(rejectMessage([EXAMPLES.stdout]), 'event: expected a JSON object, got an array');
  assert.equal(rejectMessage('stdout'), 'event: expected a JSON object, got "stdout" (string)');
  assert.equal(rejectMessage(undefined), 'event: expected a JSON object, got nothing');
});

test('an unknown or missing type is rejected, listing the known types', () => {
  assert.match(rejectMessage({ type: 'stdin', seq: 1, ts: 0 }), /^event\.type: expected one of start, stdout, .*, got "stdin" \(string\)$/);
  assert.match(rejectMessage({ seq: 1, ts: 0 }), /^event\.type: .* got nothing$/);
  assert.match(rejectMessage({ type: 'STDOUT', seq: 1, ts: 0 }), /got "STDOUT"/);
});

test('seq must be a positive integer', () => {
  for (const seq of [0, -1, 1.5, '1', null, Number.NaN, 2 ** 53]) {
    assert.match(rejectMessage(variant(EXAMPLES.stdout, { seq })), /^stdout\.seq: expected a positive integer, got /, String(seq));
  }
  assert.equal(rejectMessage(variant(EXAMPLES.stdout, { seq: undefined })), 'stdout.seq: expected a positive integer, got nothing');
});

test('ts must be a number', () => {
  assert.equal(rejectMessage(variant(EXAMPLES.stdout, { ts: '2024-01-01' })), 'stdout.ts: expected a number, got "2024-01-01" (string)');
  assert.match(rejectMessage(variant(EXAMPLES.stdout, { ts: undefined })), /^stdout\.ts: expected a number, got nothing$/);
});

test('every required field of every variant is checked for presence', () => {
  for (const type of EVENT_TYPES) {
    for (const field of REQUIRED[type]) {
      const message = rejectMessage(variant(EXAMPLES[type], { [field]: undefined }));
      assert.match(message, new RegExp(`^${type}\\.${field}: expected .+, got nothing$`), `${type}.${field}`);
    }
  }
});

test('fields of the wrong primitive type are rejected with the field, the expectation and what arrived', () => {
  const cases: [EventType, Record<string, unknown>, string][] = [
    ['start', { execution_id: 1 }, 'start.execution_id: expected a string, got 1 (number)'],
    ['start', { session_id: null }, 'start.session_id: expected a string, got null'],
    ['start', { language: 'cobol' }, 'start.language: expected one of "python", "javascript", "typescript", "bash", "r", "java", got "cobol" (string)'],
    ['start', { mode: 'thread' }, 'start.mode: expected one of "kernel", "process", got "thread" (string)'],
    ['stdout', { content: ['a'] }, 'stdout.content: expected a string, got an array'],
    ['stderr', { content: true }, 'stderr.content: expected a string, got true (boolean)'],
    ['progress', { message: 5 }, 'progress.message: expected a string, got 5 (number)'],
    ['progress', { percent: '50%' }, 'progress.percent: expected a number, got "50%" (string)'],
    ['result', { data: 'x' }, 'result.data: expected a JSON object, got "x" (string)'],
    ['result', { data: [] }, 'result.data: expected a JSON object, got an array'],
    ['result', { data: null }, 'result.data: expected a JSON object, got null'],
    ['truncated', { stream: 'stdin' }, 'truncated.stream: expected one of "stdout", "stderr", got "stdin" (string)'],
    ['truncated', { dropped_bytes: -5 }, 'truncated.dropped_bytes: expected an integer >= 0, got -5 (number)'],
    ['truncated', { dropped_bytes: 1.5 }, 'truncated.dropped_bytes: expected an integer >= 0, got 1.5 (number)'],
    ['gap', { from_seq: 0 }, 'gap.from_seq: expected a positive integer, got 0 (number)'],
    ['gap', { to_seq: '9' }, 'gap.to_seq: expected a positive integer, got "9" (string)'],
    ['done', { exit_code: '0' }, 'done.exit_code: expected an integer or null, got "0" (string)'],
    ['done', { exit_code: 0.5 }, 'done.exit_code: expected an integer or null, got 0.5 (number)'],
    ['done', { duration: 5.1 }, 'done.duration: expected a string, got 5.1 (number)'],
    ['done', { duration_ms: -1 }, 'done.duration_ms: expected a number >= 0, got -1 (number)'],
    ['done', { reason: 'finished' }, 'done.reason: expected one of "exited", "signaled", "timeout", "cancelled", "memory_limit", "output_limit", "error", "sandbox_lost", got "finished" (string)'],
    ['done', { signal: 9 }, 'done.signal: expected a string, got 9 (number)'],
    ['error', { error: {} }, 'error.error: expected a string, got an object'],
    ['error', { code: 500 }, 'error.code: expected a string, got 500 (number)'],
  ];
  for (const [type, changes, expected] of cases) {
    assert.equal(rejectMessage(variant(EXAMPLES[type], changes)), expected);
  }
});

test('every variant survives encodeEventSSE → SSEDecoder → JSON.parse → parseExecutionEvent', () => {
  const events = EVENT_TYPES.map((t) => EXAMPLES[t]);
  const wire = events.map((ev) => encodeEventSSE(ev.seq, ev.type, JSON.stringify(ev))).join('');
  const d = new SSEDecoder();
  const messages = [...d.push(new TextEncoder().encode(wire)), ...d.end()];
  const parsed = messages.map((m) => {
    const r = parseExecutionEvent(JSON.parse(m.data));
    assert.ok(r.ok);
    assert.equal(m.event, r.value.type, 'the SSE event name matches the payload type');
    assert.equal(m.id, String(r.value.seq), 'the SSE id is the seq');
    return r.value;
  });
  assert.deepEqual(parsed, events);
  assert.equal(d.lastEventID, String(EXAMPLES.error.seq));
});

test('every variant survives encodeEventNDJSON → NDJSONDecoder → parseExecutionEvent', () => {
  const events = EVENT_TYPES.map((t) => EXAMPLES[t]);
  const d = new NDJSONDecoder();
  const values = [...d.push(events.map((ev) => encodeEventNDJSON(JSON.stringify(ev))).join('')), ...d.end()];
  assert.deepEqual(
    values.map((v) => parseExecutionEvent(v)),
    events.map((value) => ({ ok: true, value })),
  );
});
