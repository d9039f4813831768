import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, DEFAULT_RECONNECT, reconnectPolicy } from './backoff.js';

const policy = { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 1000 };

test('the step doubles per attempt up to the cap', () => {
  const top = (n: number): number => backoffDelay(n, policy, () => 1);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(top), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(backoffDelay(1000, policy, () => 1), 1000, 'huge attempt numbers do not overflow');
});

test('jitter stays within half the step and the step', () => {
  assert.equal(backoffDelay(3, policy, () => 0), 200);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(3, policy);
    assert.ok(d >= 200 && d <= 400, `${d}`);
  }
});

test("a server's Retry-After raises the wait, still under the cap", () => {
  assert.equal(backoffDelay(1, policy, () => 0, 0.5), 500);
  assert.equal(backoffDelay(1, policy, () => 0, 60), 1000);
});

test('options merge over the defaults and are checked with the option named', () => {
  assert.deepEqual(reconnectPolicy(undefined), DEFAULT_RECONNECT);
  assert.deepEqual(reconnectPolicy({ maxAttempts: 2 }), { ...DEFAULT_RECONNECT, maxAttempts: 2 });
  assert.throws(() => reconnectPolicy({ maxAttempts: -1 }), /reconnect\.maxAttempts: expected an integer >= 0, got -1/);
  assert.throws(() => reconnectPolicy({ maxDelayMs: Number.NaN }), /reconnect\.maxDelayMs/);
});
