import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidRequestError, RateLimitedError } from '../errors.js';
import { sendStdin, STDIN_PIECE, stdinPieces } from './stdin-pieces.js';

test('stdin goes over a WebSocket in pieces that join back to the input, never splitting a surrogate pair', () => {
  assert.deepEqual([...stdinPieces('')], [['', true]]);
  assert.deepEqual([...stdinPieces('abcde', 2)], [['ab', false], ['cd', false], ['e', true]]);
  const emoji = 'a😀b😀';
  const pieces = [...stdinPieces(emoji, 2)];
  assert.equal(pieces.map(([p]) => p).join(''), emoji);
  // A lone surrogate would not survive UTF-8 encoding.
  for (const [p] of pieces) assert.equal(new TextDecoder().decode(new TextEncoder().encode(p)), p, `a piece is well formed: ${JSON.stringify(p)}`);
  assert.deepEqual(pieces.map(([, last]) => last), pieces.map((_, i) => i === pieces.length - 1));
  const big = 'x'.repeat(600 * 1024);
  assert.deepEqual([...stdinPieces(big)].map(([p]) => p.length), [256 * 1024, 256 * 1024, 88 * 1024]);
});

test('sendStdin sends each piece in order, eof with the last, and sends a RATE_LIMITED piece again', async () => {
  const sent: [string, boolean][] = [];
  let refusals = 1;
  const text = 'y'.repeat(STDIN_PIECE + 10);
  await sendStdin(text, true, async (piece, eof) => {
    if (sent.length === 1 && refusals-- > 0) throw new RateLimitedError('backlog', { retryAfter: 0.01 });
    sent.push([piece.slice(0, 1), eof]);
  });
  assert.deepEqual(sent, [['y', false], ['y', true]]);
  await assert.rejects(
    sendStdin('x', false, async () => {
      throw new InvalidRequestError('stdin is closed');
    }),
    InvalidRequestError,
  );
});
