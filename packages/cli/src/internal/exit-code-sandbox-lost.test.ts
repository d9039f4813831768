import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode, exitCodeForDone } from './exit-codes.js';
import { describeDone } from './render-event.js';

test('an execution whose worker died (sandbox_lost) exits 69, as SANDBOX_UNAVAILABLE, and says so', () => {
  assert.equal(exitCodeForDone({ reason: 'sandbox_lost', exit_code: null }), ExitCode.UNAVAILABLE);
  assert.equal(ExitCode.UNAVAILABLE, 69);
  assert.match(describeDone({ type: 'done', seq: 3, ts: 0, reason: 'sandbox_lost', exit_code: null, duration: '1.000s', duration_ms: 1000 }), /worker running it died/);
});
