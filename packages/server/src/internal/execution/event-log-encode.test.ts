import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFields } from './event-log.js';

test('encodeFields is JSON.stringify, fast path or not, for every kind of output', () => {
  const samples: string[] = [
    '',
    'plain',
    'line\n',
    ('x'.repeat(63) + '\n').repeat(1024),
    'quote " inside',
    'back\\slash',
    'tab\tand\rcarriage',
    '\u0000\u0001\u001f\u007f',
    'é ü 中文 \u2028 \u2029',
    '😀 astral\n',
    'lone \ud800 high',
    'lone \udc00 low',
    '\n\n\n',
  ];
  // Every character below U+0100 alone and between newlines.
  for (let c = 0; c < 0x100; c++) samples.push(String.fromCharCode(c), `a\n${String.fromCharCode(c)}\nb`);
  // Random mixes, seeded so a failure reproduces.
  let seed = 42;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const alphabet = ['a', '\n', '"', '\\', '\t', '\u0000', 'é', '😀', '\ud800', ' ', '\u2028'];
  for (let i = 0; i < 500; i++) samples.push(Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]).join(''));
  for (const content of samples) {
    assert.equal(encodeFields({ content }), JSON.stringify({ content }), JSON.stringify(content));
    // Output with more fields takes JSON.stringify's path and keeps the field order.
    assert.equal(encodeFields({ content, stream: 'stdout' }), JSON.stringify({ content, stream: 'stdout' }));
  }
  assert.equal(encodeFields({}), '{}');
  assert.equal(encodeFields({ content: 3 }), '{"content":3}');
  assert.equal(encodeFields({ exit_code: 0, reason: 'exited' }), JSON.stringify({ exit_code: 0, reason: 'exited' }));
});
