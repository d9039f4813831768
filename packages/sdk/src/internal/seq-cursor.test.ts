import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeqCursor } from './seq-cursor.js';

test('each seq passes once, in order; replays and duplicates are dropped', () => {
  const c = new SeqCursor();
  const seen = [1, 2, 3, 2, 3, 4, 1, 5, 5].filter((s) => c.accept(s));
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  assert.equal(c.last, 5);
  assert.equal(c.next, 6);
});

test('a cursor can start in the middle of a log', () => {
  const c = new SeqCursor(9);
  assert.equal(c.accept(9), false);
  assert.equal(c.accept(10), true);
});

test('a gap event (seq = to_seq) moves the cursor past the missing range', () => {
  const c = new SeqCursor(3);
  assert.equal(c.accept(40), true);
  assert.equal(c.accept(20), false);
  assert.equal(c.next, 41);
});
