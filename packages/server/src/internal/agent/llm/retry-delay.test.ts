import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, parseRetryAfterMs, retryPolicy } from './retry-delay.js';

test('Retry-After is read as seconds, an HTTP date, or OpenAI retry-after-ms', () => {
  assert.equal(parseRetryAfterMs(new Headers({ 'retry-after': '2' })), 2000);
  assert.equal(parseRetryAfterMs(new Headers({ 'retry-after': '0.5' })), 500);
  assert.equal(parseRetryAfterMs(new Headers({ 'retry-after-ms': '150', 'retry-after': '9' })), 150);
  const now = Date.parse('Fri, 04 Dec 2026 10:00:00 GMT');
  assert.equal(parseRetryAfterMs(new Headers({ 'retry-after': 'Fri, 04 Dec 2026 10:00:03 GMT' }), now), 3000);
  assert.equal(parseRetryAfterMs(new Headers({ 'retry-after': 'soon' })), undefined);
  assert.equal(parseRetryAfterMs(new Headers()), undefined);
});

test('backoff doubles per attempt within [half, full] of its step, capped', () => {
  const p = retryPolicy({ baseDelayMs: 100, maxDelayMs: 350 });
  assert.equal(backoffDelayMs(1, p, () => 0), 50);
  assert.equal(backoffDelayMs(1, p, () => 1), 100);
  assert.equal(backoffDelayMs(2, p, () => 1), 200);
  assert.equal(backoffDelayMs(5, p, () => 1), 350);
});

test('retry options are checked by name', () => {
  assert.throws(() => retryPolicy({ maxAttempts: 0 }), /retry\.maxAttempts must be an integer >= 1, got 0/);
  assert.throws(() => retryPolicy({ baseDelayMs: -1 }), /retry\.baseDelayMs/);
});
