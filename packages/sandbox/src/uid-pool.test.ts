import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UIDPool } from './uid-pool.js';

test('uids are handed out lowest first, never twice, and come back when released', () => {
  const pool = new UIDPool(700000, 3);
  assert.deepEqual([pool.acquire(), pool.acquire(), pool.acquire()], [700000, 700001, 700002]);
  assert.equal(pool.acquire(), undefined);
  pool.release(700001);
  pool.release(700001); // a double release must not hand the uid out twice
  assert.equal(pool.acquire(), 700001);
  assert.equal(pool.acquire(), undefined);
  assert.equal(pool.inUse, 3);
});

test('a pool refuses system uids and empty ranges', () => {
  assert.throws(() => new UIDPool(0, 10), RangeError);
  assert.throws(() => new UIDPool(700000, 0), RangeError);
});
