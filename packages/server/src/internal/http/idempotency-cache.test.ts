import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdempotencyCache, requestFingerprint } from './idempotency-cache.js';

const live = (): boolean => true;
const FP = requestFingerprint('s', { code: 'print(1)' });

test('two racing requests with one key share one execution', async () => {
  const cache = new IdempotencyCache();
  let started = 0;
  const start = async (): Promise<string> => {
    started++;
    await new Promise((r) => setTimeout(r, 10));
    return `exec-${started}`;
  };
  const [a, b] = await Promise.all([cache.resolve(null, 'k', FP, live, start), cache.resolve(null, 'k', FP, live, start)]);
  assert.equal(a, b);
  assert.equal(started, 1);
});

test('keys are per owner, and a failed start is forgotten', async () => {
  const cache = new IdempotencyCache();
  assert.equal(await cache.resolve('a', 'k', FP, live, async () => 'x'), 'x');
  assert.equal(await cache.resolve('b', 'k', FP, live, async () => 'y'), 'y');
  await assert.rejects(cache.resolve(null, 'f', FP, live, async () => Promise.reject(new Error('busy'))));
  assert.equal(await cache.resolve(null, 'f', FP, live, async () => 'z'), 'z');
});

test('an expired execution runs afresh under the same key', async () => {
  const cache = new IdempotencyCache();
  await cache.resolve(null, 'k', FP, live, async () => 'old');
  assert.equal(await cache.resolve(null, 'k', FP, (id) => id !== 'old', async () => 'new'), 'new');
});

test('the oldest keys are forgotten past the bound', async () => {
  const cache = new IdempotencyCache(60_000, 2);
  for (const k of ['a', 'b', 'c']) await cache.resolve(null, k, FP, live, async () => k);
  assert.equal(await cache.resolve(null, 'a', FP, live, async () => 'again'), 'again');
});

test('a key reused for a different request is refused, while the same request replays', async () => {
  const cache = new IdempotencyCache();
  const body = { code: 'print(1)', env: { A: '1', B: '2' }, timeout: 5 };
  assert.equal(await cache.resolve(null, 'k', requestFingerprint('s1', body), live, async () => 'first'), 'first');
  // The same session and body, its fields in another order: the same request.
  const reordered = { timeout: 5, env: { B: '2', A: '1' }, code: 'print(1)' };
  assert.equal(await cache.resolve(null, 'k', requestFingerprint('s1', reordered), live, async () => 'second'), 'first');
  const others = [
    requestFingerprint('s2', body),
    requestFingerprint('s1', { ...body, code: 'print(2)' }),
    requestFingerprint('s1', { ...body, language: 'bash' }),
    requestFingerprint('s1', { ...body, env: { A: '1' } }),
  ];
  for (const fp of others) {
    await assert.rejects(cache.resolve(null, 'k', fp, live, async () => 'other'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'INVALID_REQUEST');
      assert.match(err.message, /^Idempotency-Key: already used within 24 h for a different request/);
      return true;
    });
  }
  // Even while the first request is still starting.
  const slow = cache.resolve(null, 'p', FP, live, () => new Promise((r) => setTimeout(() => r('slow'), 10)));
  await assert.rejects(cache.resolve(null, 'p', requestFingerprint('s', { code: 'other' }), live, async () => 'x'), /different request/);
  assert.equal(await slow, 'slow');
});
