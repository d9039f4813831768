import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkUniqueKeys, KeyRing, parseAPIKeys, tenantID } from './api-keys.js';

const A = 'a'.repeat(16);
const B = 'b0123456789abcdef0123456789';

test('a keys file takes bare keys and name:key lines, skipping blanks and # comments', () => {
  const keys = parseAPIKeys(`# team keys\n\n${A}\n  alice:${B}  \r\n# done\n`, 'keys.txt', 'line');
  assert.deepEqual(keys, [
    { name: null, key: A },
    { name: 'alice', key: B },
  ]);
});

test('the environment variable is comma-separated, empty entries ignored', () => {
  assert.deepEqual(parseAPIKeys(` ${A}, bob:${B},`, 'SLUICE_API_KEYS', 'comma'), [
    { name: null, key: A },
    { name: 'bob', key: B },
  ]);
});

test('bad entries name where they are, never the key', () => {
  assert.throws(() => parseAPIKeys('short', 'SLUICE_API_KEYS', 'comma'), (err: Error) => {
    assert.match(err.message, /^SLUICE_API_KEYS entry 1: expected a key of at least 16 characters/);
    assert.doesNotMatch(err.message, /short/);
    return true;
  });
  const secret = 'has spaces in it but long enough';
  assert.throws(() => parseAPIKeys(`# c\n${secret}`, 'f', 'line'), (err: Error) => !err.message.includes(secret) && /^f line 2:/.test(err.message));
  assert.throws(() => parseAPIKeys(`bad name:${A}`, 'f', 'line'), /f line 1: expected "name:key"/);
  assert.throws(() => checkUniqueKeys([{ name: 'x', key: A }, { name: 'y', key: A }]), /key y is listed twice/);
  assert.throws(() => checkUniqueKeys([{ name: 'x', key: A }, { name: 'x', key: B }]), /name "x" is used twice/);
});

test('a bearer key maps to its tenant; missing, malformed and wrong keys say which', () => {
  const ring = new KeyRing([{ name: null, key: A }, { name: 'bob', key: B }]);
  assert.equal(ring.enabled, true);
  assert.deepEqual(ring.authenticate(`Bearer ${B}`), { id: tenantID(B), label: 'bob' });
  assert.deepEqual(ring.authenticate(`bearer  ${A} `), { id: tenantID(A), label: `key-${tenantID(A).slice(0, 8)}` });
  assert.equal((ring.authenticate(undefined) as { reason: string }).reason, 'missing');
  assert.equal((ring.authenticate('') as { reason: string }).reason, 'missing');
  assert.equal((ring.authenticate(`Basic ${A}`) as { reason: string }).reason, 'malformed');
  assert.equal((ring.authenticate('Bearer') as { reason: string }).reason, 'malformed');
  assert.equal((ring.authenticate(`Bearer ${A}x`) as { reason: string }).reason, 'invalid');
  assert.equal((ring.authenticate(`Bearer ${A.slice(1)}`) as { reason: string }).reason, 'invalid');
  assert.equal(new KeyRing([]).enabled, false);
});

test('a tenant id is stable, 128 bits of hex, and not the key or its plain hash', () => {
  assert.equal(tenantID(A), tenantID(A));
  assert.notEqual(tenantID(A), tenantID(B));
  assert.match(tenantID(A), /^[0-9a-f]{32}$/);
  assert.ok(!tenantID(A).includes(A));
});
