import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SSE_EVENT_END, encodeEventSSE, encodeEventSSEHead, encodeSSE, encodeSSEComment } from './sse-encoder.js';
import { SSEDecoder } from './sse-decoder.js';

function decode(text: string): { id: string; event: string; data: string; retry?: number }[] {
  const d = new SSEDecoder();
  return [...d.push(text), ...d.end()];
}

test('encodeSSE frames data alone as one data line and a blank line', () => {
  assert.equal(encodeSSE({ data: 'hello' }), 'data: hello\n\n');
});

test('encodeSSE writes retry, id, event and data fields in that order', () => {
  assert.equal(encodeSSE({ data: 'x', event: 'stdout', id: 7, retry: 1500 }), 'retry: 1500\nid: 7\nevent: stdout\ndata: x\n\n');
  assert.equal(encodeSSE({ data: 'x', id: 'abc' }), 'id: abc\ndata: x\n\n');
});

test('encodeSSE splits data on CR, LF and CRLF into separate data lines', () => {
  assert.equal(encodeSSE({ data: 'a\rb\nc\r\nd' }), 'data: a\ndata: b\ndata: c\ndata: d\n\n');
  assert.equal(encodeSSE({ data: '\r\n\r' }), 'data: \ndata: \ndata: \n\n', 'CRLF is one break, the lone CR another');
});

test('encodeSSE keeps empty data and trailing line breaks as empty data lines', () => {
  assert.equal(encodeSSE({ data: '' }), 'data: \n\n');
  assert.equal(encodeSSE({ data: 'a\n' }), 'data: a\ndata: \n\n');
  assert.deepEqual(decode(encodeSSE({ data: '' })), [{ id: '', event: 'message', data: '' }]);
  assert.deepEqual(decode(encodeSSE({ data: 'a\n' })), [{ id: '', event: 'message', data: 'a\n' }]);
});

test('encodeSSE output decodes back, with values starting with a space intact', () => {
  const framed = encodeSSE({ data: ' lead\r\n  two', event: ' spaced', id: ' id', retry: 0 });
  assert.deepEqual(decode(framed), [{ id: ' id', event: ' spaced', data: ' lead\n  two', retry: 0 }]);
});

test('encodeSSE rejects an event type containing CR or LF', () => {
  for (const event of ['a\nb', 'a\rb', 'a\r\nb', '\n']) {
    assert.throws(() => encodeSSE({ data: 'x', event }), TypeError, JSON.stringify(event));
  }
});

test('encodeSSE rejects an id containing CR, LF or NUL, or a non-finite numeric id', () => {
  for (const id of ['a\nb', 'a\rb', 'a\0b']) assert.throws(() => encodeSSE({ data: 'x', id }), TypeError, JSON.stringify(id));
  for (const id of [Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => encodeSSE({ data: 'x', id }), TypeError);
});

test('encodeSSE rejects a retry that is not a non-negative integer', () => {
  for (const retry of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    assert.throws(() => encodeSSE({ data: 'x', retry }), RangeError, String(retry));
  }
});

test('encodeSSEComment frames a comment that decoders ignore', () => {
  assert.equal(encodeSSEComment('ping'), ': ping\n\n');
  assert.deepEqual(decode(`${encodeSSEComment('ping')}${encodeSSE({ data: 'x' })}${encodeSSEComment('')}`), [
    { id: '', event: 'message', data: 'x' },
  ]);
});

test('encodeSSEComment rejects text containing CR or LF', () => {
  assert.throws(() => encodeSSEComment('a\nb'), TypeError);
  assert.throws(() => encodeSSEComment('a\rb'), TypeError);
});

test('encodeEventSSE frames id, event and data exactly', () => {
  assert.equal(encodeEventSSE(3, 'stdout', '{"a":1}'), 'id: 3\nevent: stdout\ndata: {"a":1}\n\n');
});

test('encodeEventSSEHead, the JSON and SSE_EVENT_END are encodeEventSSE in pieces', () => {
  const json = JSON.stringify({ type: 'stdout', seq: 41, content: 'x'.repeat(9000) });
  assert.equal(`${encodeEventSSEHead(41, 'stdout')}${json}${SSE_EVENT_END}`, encodeEventSSE(41, 'stdout', json));
});

test('encodeEventSSE carries any JSON.stringify output, control characters and U+2028 included, in one data line', () => {
  const value = { type: 'stdout', seq: 12, ts: 1, content: 'line1\r\nline2\n\0\x1b[31m\u2028\u2029€😀 "quoted" data: x\n\n' };
  const json = JSON.stringify(value);
  const framed = encodeEventSSE(12, 'stdout', json);
  assert.equal(framed.split('\n').length, 5, 'three fields, the blank line, and the empty tail');
  const [m, ...rest] = decode(framed);
  assert.deepEqual(rest, []);
  assert.deepEqual(m, { id: '12', event: 'stdout', data: json });
  assert.deepEqual(JSON.parse(m?.data ?? ''), value);
});
