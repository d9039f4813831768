import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadTailText } from './head-tail-text.js';

test('text within the bound is kept whole', () => {
  const t = new HeadTailText(10);
  t.append('abc');
  t.append('defg');
  assert.equal(t.toString(), 'abcdefg');
  assert.equal(t.droppedChars, 0);
});

test('past the bound the head and the tail stay, and the cut says how much went', () => {
  const t = new HeadTailText(10);
  for (const ch of 'abcdefghijklmnopqrstuvwxyz') t.append(ch);
  assert.equal(t.droppedChars, 16);
  assert.equal(t.toString(), 'abcde\n[… 16 characters cut from the middle …]\nvwxyz');
});

test('one big append is cut the same way', () => {
  const t = new HeadTailText(6);
  t.append('0123456789');
  assert.equal(t.toString(), '012\n[… 4 characters cut from the middle …]\n789');
});
