import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldEvents } from '@sluice/protocol';
import { toRunResult } from './run-result.js';

test('a gap in the stream shows in the result: gap, and how many events were skipped', () => {
  const fold = foldEvents([
    { type: 'start', seq: 1, ts: 1, execution_id: 'e', session_id: 's', language: 'python', mode: 'process' },
    { type: 'gap', seq: 40, ts: 2, from_seq: 2, to_seq: 40 },
    { type: 'stdout', seq: 41, ts: 3, content: 'tail\n' },
    { type: 'done', seq: 42, ts: 4, exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited' },
  ]);
  const r = toRunResult(fold);
  assert.equal(r.gap, true);
  assert.deepEqual(r.evicted, { events: 39, fromSeq: 2, toSeq: 40 });
  assert.equal(r.stdout, 'tail\n');
});

test('without a gap nothing was skipped', () => {
  const r = toRunResult(
    foldEvents([{ type: 'done', seq: 1, ts: 1, exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited' }]),
  );
  assert.equal(r.gap, false);
  assert.deepEqual(r.evicted, { events: 0, fromSeq: null, toSeq: null });
});
