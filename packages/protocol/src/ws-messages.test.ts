import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  acceptedMessage,
  encodeClientMessage,
  endMessage,
  errorMessage,
  eventFrame,
  parseClientMessage,
  parseServerMessage,
  pongMessage,
  type ClientMessage,
  type ParsedMessage,
} from './ws-messages.js';

function rejected(p: ParsedMessage): { message: string; ids: object } {
  assert.equal(p.ok, false, 'expected a rejection');
  return p.ok ? { message: '', ids: {} } : { message: p.message, ids: p.ids };
}

test('each message type parses into its own variant', () => {
  assert.deepEqual(parseClientMessage('{"type":"execute","request_id":"r1","code":"print(1)","mode":"process","timeout":5}'), {
    ok: true,
    value: { type: 'execute', request_id: 'r1', run: { code: 'print(1)', mode: 'process', timeout: 5 } },
  });
  assert.deepEqual(parseClientMessage('{"type":"subscribe","execution_id":"e1","from":7}'), { ok: true, value: { type: 'subscribe', execution_id: 'e1', from: 7 } });
  assert.deepEqual(parseClientMessage('{"type":"subscribe","execution_id":"e1"}'), { ok: true, value: { type: 'subscribe', execution_id: 'e1', from: 1 } });
  assert.deepEqual(parseClientMessage('{"type":"subscribe","execution_id":"e1","from":0}'), { ok: true, value: { type: 'subscribe', execution_id: 'e1', from: 1 } });
  assert.deepEqual(parseClientMessage('{"type":"unsubscribe","execution_id":"e1"}'), { ok: true, value: { type: 'unsubscribe', execution_id: 'e1' } });
  assert.deepEqual(parseClientMessage('{"type":"cancel","execution_id":"e1"}'), { ok: true, value: { type: 'cancel', execution_id: 'e1' } });
  assert.deepEqual(parseClientMessage('{"type":"stdin","execution_id":"e1","data":"x\\n"}'), {
    ok: true,
    value: { type: 'stdin', execution_id: 'e1', data: 'x\n', eof: false },
  });
  assert.deepEqual(parseClientMessage('{"type":"stdin","execution_id":"e1","eof":true}'), { ok: true, value: { type: 'stdin', execution_id: 'e1', data: '', eof: true } });
  assert.deepEqual(parseClientMessage('{"type":"ping"}'), { ok: true, value: { type: 'ping' } });
});

test('malformed messages are refused with a message naming the field, expectation and what arrived', () => {
  assert.match(rejected(parseClientMessage('nope')).message, /^message: expected one JSON object, got malformed JSON/);
  assert.match(rejected(parseClientMessage('[1]')).message, /^message: expected a JSON object, got an array$/);
  assert.match(rejected(parseClientMessage('{"type":"run"}')).message, /^type: expected one of "execute", "subscribe", .*got "run" \(string\)$/);
  assert.match(rejected(parseClientMessage('{}')).message, /^type: expected one of .*got nothing$/);
  assert.match(rejected(parseClientMessage('{"type":"execute","code":"x"}')).message, /^request_id: expected a string of 1 to 128 characters \(it is required\), got nothing$/);
  assert.match(rejected(parseClientMessage(`{"type":"execute","request_id":"${'r'.repeat(129)}","code":"x"}`)).message, /^request_id: expected a string of 1 to 128/);
  assert.match(rejected(parseClientMessage('{"type":"execute","request_id":"r","code":"x","timeout":"5"}')).message, /^timeout: expected a number > 0 \(seconds\), got "5" \(string\)$/);
  assert.match(rejected(parseClientMessage('{"type":"execute","request_id":"r"}')).message, /^code: expected a string \(it is required\), got nothing$/);
  assert.match(rejected(parseClientMessage('{"type":"subscribe","execution_id":"e","from":1.5}')).message, /^from: expected an integer >= 0 .*got 1\.5 \(number\)$/);
  assert.match(rejected(parseClientMessage('{"type":"subscribe","execution_id":"e","from":-1}')).message, /^from: /);
  assert.match(rejected(parseClientMessage('{"type":"cancel"}')).message, /^execution_id: expected a string .*, or a run_id \(it is required\), got nothing$/);
  assert.match(rejected(parseClientMessage('{"type":"stdin","execution_id":"e"}')).message, /^data: expected a string \(or "eof": true\), got nothing$/);
  assert.match(rejected(parseClientMessage('{"type":"stdin","execution_id":"e","data":1}')).message, /^data: expected a string, got 1 \(number\)$/);
});

test('unknown fields are refused with the list for that message type; heartbeat and on_disconnect are HTTP-only', () => {
  assert.equal(
    rejected(parseClientMessage('{"type":"execute","request_id":"r","code":"x","heartbeat":5}')).message,
    'heartbeat: unknown field for type "execute"; expected one of type, request_id, code, language, mode, timeout, stdin, env',
  );
  assert.match(rejected(parseClientMessage('{"type":"execute","request_id":"r","code":"x","on_disconnect":"cancel"}')).message, /^on_disconnect: unknown field/);
  assert.match(rejected(parseClientMessage('{"type":"ping","x":1}')).message, /^x: unknown field for type "ping"; expected one of type$/);
  assert.match(rejected(parseClientMessage('{"type":"cancel","execution_id":"e","from":1}')).message, /^from: unknown field for type "cancel"/);
});

test('a refused message still carries the well-formed ids it had, for correlation', () => {
  assert.deepEqual(rejected(parseClientMessage('{"type":"execute","request_id":"r9","code":5}')).ids, { request_id: 'r9' });
  assert.deepEqual(rejected(parseClientMessage('{"type":"stdin","execution_id":"e3"}')).ids, { execution_id: 'e3' });
  assert.deepEqual(rejected(parseClientMessage('{"type":"execute","request_id":7}')).ids, {});
});

test('an event frame is the stored JSON with the execution id appended; a start event already has it', () => {
  const json = '{"type":"stdout","seq":2,"ts":1,"content":"a\\"}\\n"}';
  const frame = eventFrame({ type: 'stdout', json }, 'abc');
  assert.equal(frame, `${json.slice(0, -1)},"execution_id":"abc"}`);
  assert.deepEqual(JSON.parse(frame), { type: 'stdout', seq: 2, ts: 1, content: 'a"}\n', execution_id: 'abc' });
  const start = '{"type":"start","seq":1,"ts":1,"execution_id":"abc","session_id":"s","language":"python","mode":"process"}';
  assert.equal(eventFrame({ type: 'start', json: start }, 'abc'), start);
});

test('replies have a fixed key order', () => {
  assert.equal(acceptedMessage('r', 'e'), '{"type":"accepted","request_id":"r","execution_id":"e"}');
  assert.equal(pongMessage(), '{"type":"pong"}');
  assert.equal(errorMessage('NOT_FOUND', 'no', { execution_id: 'e' }), '{"type":"error","code":"NOT_FOUND","error":"no","execution_id":"e"}');
  assert.equal(errorMessage('INVALID_REQUEST', 'bad'), '{"type":"error","code":"INVALID_REQUEST","error":"bad"}');
});

test('every client message encodes to a frame that parses back to it; execute is flat and eof is written only when true', () => {
  const messages: ClientMessage[] = [
    { type: 'execute', request_id: 'r1', run: { code: 'print(1)', mode: 'process', timeout: 5 } },
    { type: 'subscribe', execution_id: 'e1', from: 3 },
    { type: 'unsubscribe', execution_id: 'e1' },
    { type: 'cancel', execution_id: 'e1' },
    { type: 'stdin', execution_id: 'e1', data: 'x', eof: false },
    { type: 'stdin', execution_id: 'e1', data: '', eof: true },
    { type: 'ping' },
  ];
  for (const m of messages) assert.deepEqual(parseClientMessage(encodeClientMessage(m)), { ok: true, value: m });
  assert.equal(encodeClientMessage(messages[0]!), '{"type":"execute","request_id":"r1","code":"print(1)","mode":"process","timeout":5}');
  assert.equal(encodeClientMessage(messages[4]!), '{"type":"stdin","execution_id":"e1","data":"x"}');
});

test("the server's replies and event frames parse into their variants", () => {
  assert.deepEqual(parseServerMessage(acceptedMessage('r', 'e')), { ok: true, value: { type: 'accepted', request_id: 'r', execution_id: 'e' } });
  assert.deepEqual(parseServerMessage(endMessage('e', 7)), { ok: true, value: { type: 'end', execution_id: 'e', last_seq: 7 } });
  assert.deepEqual(parseServerMessage(pongMessage()), { ok: true, value: { type: 'pong' } });
  assert.deepEqual(parseServerMessage(errorMessage('NOT_FOUND', 'no', { execution_id: 'e' })), {
    ok: true,
    value: { type: 'error', code: 'NOT_FOUND', error: 'no', execution_id: 'e' },
  });
  const frame = eventFrame({ type: 'stdout', json: '{"type":"stdout","seq":2,"ts":1,"content":"hi"}' }, 'e');
  assert.deepEqual(parseServerMessage(frame), { ok: true, value: { type: 'event', execution_id: 'e', event: { type: 'stdout', seq: 2, ts: 1, content: 'hi' } } });
  // An execution's own error event has a seq: it is an event, not a refusal.
  const failed = eventFrame({ type: 'error', json: '{"type":"error","seq":2,"ts":1,"error":"boom","code":"INTERNAL"}' }, 'e');
  assert.deepEqual(parseServerMessage(failed), { ok: true, value: { type: 'event', execution_id: 'e', event: { type: 'error', seq: 2, ts: 1, error: 'boom', code: 'INTERNAL' } } });
});

test('a malformed server message is refused; a malformed event names its execution so its stream can fail', () => {
  assert.equal(parseServerMessage('nope').ok, false);
  assert.equal(parseServerMessage('{"type":"accepted","request_id":"r"}').ok, false);
  assert.equal(parseServerMessage('{"type":"surprise"}').ok, false);
  const bad = parseServerMessage('{"type":"stdout","seq":2,"ts":1,"execution_id":"e"}');
  assert.deepEqual(bad, { ok: false, message: 'stdout.content: expected a string, got nothing', eventOf: 'e' });
  // A refusal with a malformed code still ends what it answers, as INTERNAL.
  assert.deepEqual(parseServerMessage('{"type":"error","request_id":"r","code":5}'), {
    ok: true,
    value: { type: 'error', code: 'INTERNAL', error: 'the server refused a message', request_id: 'r' },
  });
});
