import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EvictedTally, noneEvicted } from './evicted-tally.js';

test('the tally counts single drops (types, seq range, output bytes) and ranges of unknown or given types', () => {
  const t = new EvictedTally();
  assert.deepEqual(t.copy(), noneEvicted());
  t.drop(5, 'stdout', 3);
  t.drop(2, 'stderr', 4);
  t.drop(7, 'progress', 99);
  t.dropRange(10, 12, 3);
  t.dropRange(1, 1, 1, { result: 1 });
  assert.equal(t.events, 7);
  assert.deepEqual(t.copy(), { events: 7, from_seq: 1, to_seq: 12, types: { stdout: 1, stderr: 1, progress: 1, result: 1 }, stdout_bytes: 3, stderr_bytes: 4 });
});

test('copy() is a snapshot: later drops do not change it, and changing it does not change the tally', () => {
  const t = new EvictedTally();
  t.drop(1, 'stdout', 1);
  const before = t.copy();
  before.types.stdout = 100;
  t.drop(2, 'stdout', 1);
  assert.equal(before.events, 1);
  assert.deepEqual(t.copy().types, { stdout: 2 });
});
