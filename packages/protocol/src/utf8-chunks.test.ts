import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UTF8Chunks } from './utf8-chunks.js';

/** What one streaming TextDecoder makes of the same chunks: the reference. */
function reference(chunks: readonly Uint8Array[]): string {
  const d = new TextDecoder('utf-8', { ignoreBOM: true });
  return chunks.map((c) => d.decode(c, { stream: true })).join('') + d.decode();
}

function viaChunks(chunks: readonly Uint8Array[]): string {
  const d = new UTF8Chunks();
  return chunks.map((c) => d.decode(c)).join('') + d.flush();
}

// Valid characters of every length, and every kind of invalid sequence the standard names:
// lone continuation bytes, overlongs (C0, E0 80), surrogates (ED A0), past U+10FFFF (F4 90,
// F5), truncated sequences before ASCII and before another lead byte.
const SAMPLES: number[][] = [
  [...new TextEncoder().encode('a€𝄞é\u00a0z')],
  [0x80, 0xbf, 0x41],
  [0xc0, 0xaf, 0xc1, 0x80],
  [0xe0, 0x80, 0x80, 0xe0, 0xa0, 0x80],
  [0xed, 0xa0, 0x80, 0xed, 0x9f, 0xbf],
  [0xf4, 0x90, 0x80, 0x80, 0xf5, 0x80, 0xf4, 0x8f, 0xbf, 0xbf],
  [0xe2, 0x82, 0x41, 0xf0, 0x9d, 0xe2, 0x82, 0xac],
  [0xf0, 0x9d, 0x84],
  [0xef, 0xbb, 0xbf, 0x41],
];

test('every cut into two and three chunks decodes as one streaming TextDecoder does', () => {
  for (const sample of SAMPLES) {
    const b = Uint8Array.from(sample);
    const want = reference([b]);
    for (let i = 0; i <= b.length; i++) {
      assert.equal(viaChunks([b.subarray(0, i), b.subarray(i)]), want, `${sample.join(',')} cut at ${i}`);
      for (let j = i; j <= b.length; j++) {
        assert.equal(viaChunks([b.subarray(0, i), b.subarray(i, j), b.subarray(j)]), want, `${sample.join(',')} cut at ${i}, ${j}`);
      }
    }
    assert.equal(viaChunks(Array.from(b, (_, i) => b.subarray(i, i + 1))), want, `${sample.join(',')} byte by byte`);
  }
});

test('random bytes in random chunks decode as one streaming TextDecoder does', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  // Bytes biased to lead and continuation bytes, where the edge cases are.
  const pool = [0x41, 0x0a, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc2, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xc0];
  for (let round = 0; round < 300; round++) {
    const b = Uint8Array.from({ length: 1 + rand(40) }, () => pool[rand(pool.length)] as number);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < b.length; ) {
      const len = Math.min(b.length - at, rand(6));
      chunks.push(b.subarray(at, at + len));
      at += len;
    }
    assert.equal(viaChunks(chunks), reference(chunks), `bytes ${Array.from(b).join(',')}`);
  }
});

test('a flush after a cut character gives U+FFFD, and the decoder starts afresh', () => {
  const d = new UTF8Chunks();
  assert.equal(d.decode(Uint8Array.from([0x61, 0xe2, 0x82])), 'a');
  assert.equal(d.flush(), '\uFFFD');
  assert.equal(d.decode(Uint8Array.from([0xac])), '\uFFFD');
  assert.equal(d.flush(), '');
});
