import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdempotencyCache } from './idempotency-cache.js';

const live = (): boolean => true;

test('two racing requests with one key share one execution', async () => {
  const cache = new IdempotencyCache();
  let started = 0;
  const start = async (): Promise<string> => {
    started++;
    await new Promise((r) => setTimeout(r, 10));
    return `exec-${started}`;
  };
  const [a, b] = await Promise.all([cache.resolve(null, 'k', live, start), cache.resolve(null, 'k', live, start)]);
  assert.equal(a, b);
  assert.equal(started, 1);
});

test('keys are per owner, and a failed start is forgotten', async () => {
  const cache = new IdempotencyCache();
  assert.equal(await cache.resolve('a', 'k', live, async () => 'x'), 'x');
  assert.equal(await cache.resolve('b', 'k', live, async () => 'y'), 'y');
  await assert.rejects(cache.resolve(null, 'f', live, async () => Promise.reject(new Error('busy'))));
  assert.equal(await cache.resolve(null, 'f', live, async () => 'z'), 'z');
});

test('an expired execution runs afresh under the same key', async () => {
  const cache = new IdempotencyCache();
  await cache.resolve(null, 'k', live, async () => 'old');
  assert.equal(await cache.resolve(null, 'k', (id) => id !== 'old', async () => 'new'), 'new');
});

test('the oldest keys are forgotten past the bound', async () => {
  const cache = new IdempotencyCache(60_000, 2);
  for (const k of ['a', 'b', 'c']) await cache.resolve(null, k, live, async () => k);
  assert.equal(await cache.resolve(null, 'a', live, async () => 'again'), 'again');
});
