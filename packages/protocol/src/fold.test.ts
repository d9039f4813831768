import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldEvents } from './fold.js';
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
