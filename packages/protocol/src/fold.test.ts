import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addEvicted, foldEvents } from './fold.js';
import type { ExecutionEvent } from './events.js';

test('a log folds into the buffered answer', () => {
  const events: ExecutionEvent[] = [
    { type: 'start', seq: 1, ts: 0, execution_id: 'e', session_id: 's', language: 'python', mode: 'process' },
    { type: 'stdout', seq: 2, ts: 0, content: 'a' },
    { type: 'stderr', seq: 3, ts: 0, content: 'b' },
    { type: 'stdout', seq: 4, ts: 0, content: 'c' },
    { type: 'truncated', seq: 5, ts: 0, stream: 'stdout', dropped_bytes: 7 },
    { type: 'progress', seq: 6, ts: 0, percent: 50 },
    { type: 'result', seq: 7, ts: 0, data: { 'text/plain': '2' } },
    { type: 'done', seq: 8, ts: 0, exit_code: 0, duration: '0.010s', duration_ms: 10, reason: 'exited' },
  ];
  const r = foldEvents(events);
  assert.equal(r.execution_id, 'e');
  assert.equal(r.stdout, 'ac');
  assert.equal(r.stderr, 'b');
  assert.equal(r.exit_code, 0);
  assert.equal(r.reason, 'exited');
  assert.equal(r.truncated, true);
  assert.deepEqual(r.dropped_bytes, { stdout: 7, stderr: 0 });
  assert.deepEqual(r.progress, [{ percent: 50 }]);
  assert.deepEqual(r.results, [{ 'text/plain': '2' }]);
});

test('a gap in a folded stream says how many events and which seqs are missing', () => {
  const r = foldEvents([
    { type: 'gap', seq: 9, ts: 0, from_seq: 2, to_seq: 9 },
    { type: 'stdout', seq: 10, ts: 0, content: 'x' },
    { type: 'gap', seq: 20, ts: 0, from_seq: 11, to_seq: 20 },
  ]);
  assert.equal(r.gap, true);
  assert.deepEqual(r.evicted, { events: 18, from_seq: 2, to_seq: 20, types: {}, stdout_bytes: 0, stderr_bytes: 0 });
  assert.equal(r.truncated, false, 'a stream gap alone does not say output was lost');
});

test('what a log dropped makes the fold say gap, truncated and dropped_bytes', () => {
  const r = foldEvents([{ type: 'stdout', seq: 5, ts: 0, content: 'tail' }]);
  addEvicted(r, { events: 4, from_seq: 1, to_seq: 4, types: { progress: 2, stdout: 1, start: 1 }, stdout_bytes: 10, stderr_bytes: 0 });
  assert.equal(r.gap, true);
  assert.equal(r.truncated, true);
  assert.deepEqual(r.dropped_bytes, { stdout: 10, stderr: 0 });
  assert.deepEqual(r.evicted.types, { progress: 2, stdout: 1, start: 1 });
  const onlyProgress = addEvicted(foldEvents([]), { events: 3, from_seq: 2, to_seq: 4, types: { progress: 3 }, stdout_bytes: 0, stderr_bytes: 0 });
  assert.equal(onlyProgress.gap, true);
  assert.equal(onlyProgress.truncated, false, 'no output is missing');
});
