import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextCharStart, utf8Boundary } from './utf8-boundary.js';

test('a cut inside a multi-byte character moves back to its first byte', () => {
  const buf = Buffer.from('a€b'); // 61 e2 82 ac 62
  assert.equal(utf8Boundary(buf, 2), 1);
  assert.equal(utf8Boundary(buf, 3), 1);
  assert.equal(utf8Boundary(buf, 4), 4);
  assert.equal(utf8Boundary(buf, 5), 5);
});

test('an incomplete character at the end of the buffer is held back', () => {
  const emoji = Buffer.from('😀'); // 4 bytes
  for (let n = 1; n < 4; n++) assert.equal(utf8Boundary(emoji.subarray(0, n)), 0);
  assert.equal(utf8Boundary(emoji), 4);
});

test('garbage never holds a cut back', () => {
  assert.equal(utf8Boundary(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80])), 5);
  assert.equal(utf8Boundary(Buffer.from([0x61, 0xff])), 2);
  assert.equal(utf8Boundary(Buffer.from([0xc0, 0x80])), 2);
});

test('nextCharStart skips continuation bytes, at most three', () => {
  const buf = Buffer.from('€x');
  assert.equal(nextCharStart(buf, 1), 3);
  assert.equal(nextCharStart(buf, 0), 0);
  assert.equal(nextCharStart(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x41]), 0), 3);
});
