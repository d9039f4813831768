import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBase64url, randomHex } from './random-token.js';

test('random tokens: the asked length, never the same bytes twice across pool refills', () => {
  const seen = new Set<string>();
  // 3 × 4096 / 16 draws: the pool refills twice; a repeat of 128 random bits would mean reuse.
  for (let i = 0; i < 768; i++) {
    const id = randomHex(16);
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.ok(!seen.has(id), `repeated ${id}`);
    seen.add(id);
  }
  assert.match(randomHex(12), /^[0-9a-f]{24}$/);
  assert.match(randomBase64url(12), /^[A-Za-z0-9_-]{16}$/);
  // Odd sizes straddle the refill: still fresh bytes, still the right length.
  for (let i = 0; i < 700; i++) assert.equal(randomHex(7).length, 14);
  assert.throws(() => randomHex(0), RangeError);
  assert.throws(() => randomBase64url(4097), RangeError);
});
