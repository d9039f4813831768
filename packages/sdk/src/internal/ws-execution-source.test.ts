import { test } from 'node:test';
import assert from 'node:assert/strict';
import { approximateSize } from './ws-execution-source.js';

test('a queued event counts its content: a large result weighs what its data does, not a flat guess', () => {
  const png = 'A'.repeat(1 << 20);
  assert.ok(approximateSize({ type: 'result', seq: 3, ts: 0, data: { 'image/png': png } }) >= 2 << 20);
  assert.ok(approximateSize({ type: 'stdout', seq: 2, ts: 0, content: 'x'.repeat(1000) }) >= 2000);
  assert.ok(approximateSize({ type: 'progress', seq: 4, ts: 0, message: 'm'.repeat(5000) }) >= 10_000);
});
