import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_HEARTBEAT_SEC, parseCreateSessionRequest, parseRunRequest, SESSION_LIMIT_MINIMUMS, validateSessionID } from './requests.js';

function message(r: { ok: boolean } & ({ ok: true } | { ok: false; message: string })): string {
  assert.equal(r.ok, false);
  return r.ok ? '' : r.message;
}

test('a minimal run request is accepted as is', () => {
  assert.deepEqual(parseRunRequest({ code: 'print(1)' }), { ok: true, value: { code: 'print(1)' } });
});

test('run request errors name the field, the expectation and what arrived', () => {
  assert.match(message(parseRunRequest({})), /^code: expected a string \(it is required\), got nothing$/);
  assert.match(message(parseRunRequest({ code: 1 })), /^code: expected a string, got 1 \(number\)$/);
  assert.match(message(parseRunRequest({ code: '', timeout: 'abc' })), /^timeout: expected a number > 0 \(seconds\), got "abc" \(string\)$/);
  assert.match(message(parseRunRequest({ code: '', timeout: -1 })), /^timeout: .*got -1 \(number\)$/);
  assert.match(message(parseRunRequest({ code: '', mode: 'repl' })), /^mode: expected one of "kernel", "process", got "repl"/);
  assert.match(message(parseRunRequest({ code: '', on_disconnect: 'stop' })), /^on_disconnect: expected one of "continue", "cancel"/);
  assert.match(message(parseRunRequest({ code: '', env: { '1BAD': 'x' } })), /^env name: /);
  assert.match(message(parseRunRequest({ code: '', env: { OK: 3 } })), /^env\.OK: expected a string/);
  assert.match(message(parseRunRequest({ code: '', timout: 5 })), /^timout: unknown field; expected one of code, /);
  assert.match(message(parseRunRequest([1])), /^request body: expected a JSON object, got an array$/);
  assert.match(message(parseRunRequest(null)), /^request body: expected a JSON object, got null$/);
});

test('session ids are letters, digits, - and _, at most 64 characters', () => {
  assert.equal(validateSessionID('my-session_1').ok, true);
  assert.equal(validateSessionID('a'.repeat(64)).ok, true);
  assert.equal(validateSessionID('a'.repeat(65)).ok, false);
  for (const bad of ['', 'a b', '../x', 'é', 'a/b', 'a.b']) assert.equal(validateSessionID(bad).ok, false, bad);
});

test('create-session validates nested limits with their full field name', () => {
  assert.equal(parseCreateSessionRequest(undefined).ok, true);
  assert.match(message(parseCreateSessionRequest({ limits: { processes: 0 } })), /^limits\.processes: expected an integer >= 16/);
  assert.match(message(parseCreateSessionRequest({ limits: { memory: 1 } })), /^limits\.memory: unknown field/);
  assert.match(message(parseCreateSessionRequest({ limits: { memory_bytes: 1000 } })), /^limits\.memory_bytes: expected an integer >= 16777216 \(bytes; no sandbox can start with less\), got 1000/);
  assert.match(message(parseCreateSessionRequest({ limits: { cpu: 0 } })), /^limits\.cpu: expected a number >= 0\.01/);
  assert.deepEqual(parseCreateSessionRequest({ limits: { memory_bytes: 268435456, cpu: 0.5, cpu_time: 10, disk_bytes: 1048576, inodes: 100 } }), {
    ok: true,
    value: { limits: { memory_bytes: 268435456, cpu: 0.5, cpu_time: 10, disk_bytes: 1048576, inodes: 100 } },
  });
  assert.match(message(parseCreateSessionRequest({ id: 'bad id' })), /^id: expected letters/);
  assert.match(message(parseCreateSessionRequest({ network: 'yes' })), /^network: expected true or false/);
});

test('limits too small for any sandbox to start are refused, naming the minimum', () => {
  for (const [key, min] of Object.entries(SESSION_LIMIT_MINIMUMS)) {
    const below = parseCreateSessionRequest({ limits: { [key]: min - 1 } });
    assert.equal(below.ok, false, `${key} ${min - 1}`);
    assert.match(message(below), new RegExp(`^limits\\.${key}: expected an integer >= ${min} \\(.*no sandbox can start with less\\), got ${min - 1}`));
    assert.deepEqual(parseCreateSessionRequest({ limits: { [key]: min } }), { ok: true, value: { limits: { [key]: min } } });
  }
  assert.match(message(parseCreateSessionRequest({ limits: { processes: 1 } })), /^limits\.processes: expected an integer >= 16 \(tasks; no sandbox can start with less\), got 1 \(number\)/);
});

test('a heartbeat below one second is refused, naming the bound', () => {
  assert.match(message(parseRunRequest({ code: '', heartbeat: 1e-6 })), /^heartbeat: expected a number >= 1 <= 3600 \(seconds\), got 0\.000001 \(number\)/);
  assert.deepEqual(parseRunRequest({ code: '', heartbeat: MIN_HEARTBEAT_SEC }), { ok: true, value: { code: '', heartbeat: 1 } });
});
