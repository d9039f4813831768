/** The SSE decoder's line and data handling on long lines cut into many chunks (the fast paths). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEDecoder, type SSEMessage } from './sse-decoder.js';

const enc = new TextEncoder();

function feed(chunks: readonly (Uint8Array | string)[], d = new SSEDecoder()): SSEMessage[] {
  const out: SSEMessage[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

/** `b` in pieces of `size` bytes. */
function pieces(b: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

test('a long data line cut into many chunks, with multi-byte characters across the cuts, comes out whole', () => {
  const data = `{"content":"${'é€𝄞x'.repeat(5000)}"}`;
  const body = enc.encode(`id: 7\nevent: stdout\ndata: ${data}\n\nid: 8\ndata: next\n\n`);
  for (const size of [1, 3, 7, 1000, 65536]) {
    const got = feed(pieces(body, size));
    assert.deepEqual(got, [
      { id: '7', event: 'stdout', data },
      { id: '8', event: 'message', data: 'next' },
    ], `pieces of ${size}`);
  }
});

test('line terminators of every kind, in one text and cut between CR and LF', () => {
  const body = 'data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r';
  const want = [{ id: '', event: 'message', data: 'a\nb\nc' }, { id: '', event: 'message', data: 'd' }];
  assert.deepEqual(feed([body]), want);
  for (let i = 0; i <= body.length; i++) assert.deepEqual(feed([body.slice(0, i), body.slice(i)]), want, `cut at ${i}`);
});

test('empty data lines keep their line breaks, and an empty data field dispatches an empty message', () => {
  assert.deepEqual(feed(['data\ndata\n\n']), [{ id: '', event: 'message', data: '\n' }]);
  assert.deepEqual(feed(['data:\n\n']), [{ id: '', event: 'message', data: '' }]);
  assert.deepEqual(feed(['data: x\ndata:\n\n']), [{ id: '', event: 'message', data: 'x\n' }]);
  assert.deepEqual(feed([': only a comment\n\n', 'event: e\n\n']), []);
});

test('maxEventBytes counts the data lines with their line breaks, as before', () => {
  // Two lines of 4: "aaaa\n" + "bbbb\n" = 10 characters in the spec's buffer.
  assert.deepEqual(feed(['data: aaaa\ndata: bbbb\n\n'], new SSEDecoder({ maxEventBytes: 10 })), [{ id: '', event: 'message', data: 'aaaa\nbbbb' }]);
  assert.throws(() => feed(['data: aaaa\ndata: bbbbb\n\n'], new SSEDecoder({ maxEventBytes: 10 })), RangeError);
});

test('maxLineBytes bounds a line that spans chunks', () => {
  const d = new SSEDecoder({ maxLineBytes: 10 });
  assert.deepEqual(d.push('data: 123'), []);
  assert.throws(() => d.push('45'), RangeError);
});
