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

test('in strict order, only the next seq (or a gap starting at it) follows', () => {
  const c = new SeqCursor(4);
  assert.equal(c.follows(4), false, 'a duplicate');
  assert.equal(c.follows(7), false, 'an event that overtook 5 and 6');
  assert.equal(c.follows(5), true);
  assert.equal(c.follows(9, 5), true, 'a gap from 5 to 9');
  assert.equal(c.follows(9, 6), false, 'a gap that leaves 5 out');
  c.advance(9);
  assert.equal(c.next, 10);
});
